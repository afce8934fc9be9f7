// authload: closed-loop puts or serializable gets through etcd's official Go client
// (clientv3), as a user with a password. goload (/work/shared/goload) has no credentials;
// this is its counterpart for servers with auth on. clientv3 authenticates once per
// connection and sends the token with every request, as etcdctl and applications do.
// With -wait, it writes "connected" to stderr once every connection has authenticated and
// starts the load at the next line on stdin: a bench can then leave the Authenticate calls
// (bcrypt, a one-off per connection) out of what it measures. With -rate, the clients together
// send at most that many requests a second: two runs at the same rate give the server the same
// batches, so their CPU per request compares the work per request alone (closed-loop, a run
// that is answered faster batches more and pays less per request). Prints one JSON line with
// the figures bench:server reads: ops, errors, ops_per_s, p50_ms, p99_ms.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/clientv3"
)

type options struct {
	endpoints []string
	user      string
	password  string
	op        string
	clients   int
	conns     int
	warmup    time.Duration
	duration  time.Duration
	keys      int
	valueSize int
	prefix    string
	wait      bool
	rate      int
}

func parseOptions() options {
	var o options
	endpoints := flag.String("endpoints", "127.0.0.1:2379", "comma-separated endpoints")
	flag.StringVar(&o.user, "user", "", "user name (empty: no credentials)")
	flag.StringVar(&o.password, "password", "", "the user's password")
	flag.StringVar(&o.op, "op", "put", "put | get-ser")
	flag.IntVar(&o.clients, "clients", 1, "requests in flight")
	flag.IntVar(&o.conns, "conns", 1, "gRPC connections (each authenticates once)")
	flag.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "load before the measured window")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured window")
	flag.IntVar(&o.keys, "keys", 1000, "key space")
	flag.IntVar(&o.valueSize, "value-size", 256, "value bytes")
	flag.StringVar(&o.prefix, "prefix", "bench/", "key prefix (the user needs readwrite on it)")
	flag.BoolVar(&o.wait, "wait", false, `once connected, write "connected" to stderr and wait for a line on stdin`)
	flag.IntVar(&o.rate, "rate", 0, "requests a second, all clients together (0: each sends its next as soon as answered)")
	flag.Parse()
	o.endpoints = strings.Split(*endpoints, ",")
	if o.op != "put" && o.op != "get-ser" {
		fail(fmt.Errorf("-op %q: expected put or get-ser", o.op))
	}
	if o.clients < 1 || o.conns < 1 {
		fail(fmt.Errorf("-clients and -conns must be at least 1"))
	}
	if o.rate < 0 {
		fail(fmt.Errorf("-rate %d: must be 0 or more", o.rate))
	}
	return o
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "authload:", err)
	os.Exit(1)
}

// worker is one client: it sends its next request as soon as the last one is answered,
// and keeps the latencies of those sent and answered inside the measured window.
type worker struct {
	kv        clientv3.KV
	rnd       *rand.Rand
	latencies []time.Duration
	errors    int
}

func (w *worker) run(o options, from, to time.Time, value []byte, permits <-chan struct{}) {
	for {
		if permits != nil {
			if _, open := <-permits; !open {
				return
			}
		}
		t0 := time.Now()
		if !t0.Before(to) {
			return
		}
		key := fmt.Sprintf("%s%08d", o.prefix, w.rnd.Intn(o.keys))
		var err error
		if o.op == "put" {
			// every value differs, so no put is a no-op for the server
			copy(value, fmt.Sprintf("%016x", w.rnd.Uint64()))
			_, err = w.kv.Put(context.Background(), key, string(value))
		} else {
			_, err = w.kv.Get(context.Background(), key, clientv3.WithSerializable())
		}
		t1 := time.Now()
		if t0.Before(from) || t1.After(to) {
			continue
		}
		if err != nil {
			w.errors++
			continue
		}
		w.latencies = append(w.latencies, t1.Sub(t0))
	}
}

// pace hands out `rate` permits a second from now until `until`, then closes the channel.
// Permits not taken accumulate up to a second's worth: a server slower than the rate sees a
// closed loop again.
func pace(rate int, until time.Time) <-chan struct{} {
	permits := make(chan struct{}, rate)
	go func() {
		defer close(permits)
		start := time.Now()
		given := 0
		for now := start; now.Before(until); now = time.Now() {
			for due := int(now.Sub(start).Seconds() * float64(rate)); given < due; given++ {
				permits <- struct{}{}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return permits
}

func main() {
	o := parseOptions()
	conns := make([]*clientv3.Client, o.conns)
	for i := range conns {
		c, err := clientv3.New(clientv3.Config{Endpoints: o.endpoints, DialTimeout: 5 * time.Second, Username: o.user, Password: o.password})
		if err != nil {
			fail(err)
		}
		defer c.Close()
		conns[i] = c
	}
	if o.wait {
		fmt.Fprintln(os.Stderr, "connected")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			fail(fmt.Errorf("waiting for the start: %v", err))
		}
	}
	from := time.Now().Add(o.warmup)
	to := from.Add(o.duration)
	var permits <-chan struct{}
	if o.rate > 0 {
		permits = pace(o.rate, to)
	}
	workers := make([]*worker, o.clients)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{kv: conns[i%len(conns)], rnd: rand.New(rand.NewSource(int64(i)))}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(o, from, to, make([]byte, o.valueSize), permits)
		}()
	}
	wg.Wait()

	var all []time.Duration
	errors := 0
	for _, w := range workers {
		all = append(all, w.latencies...)
		errors += w.errors
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	percentile := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000
	}
	out, _ := json.Marshal(map[string]interface{}{
		"op": o.op, "clients": o.clients, "conns": o.conns, "user": o.user, "ops": len(all), "errors": errors,
		"ops_per_s": float64(len(all)) / o.duration.Seconds(), "p50_ms": percentile(0.5), "p99_ms": percentile(0.99),
	})
	fmt.Println(string(out))
}
