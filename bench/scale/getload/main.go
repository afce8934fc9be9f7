// getload: closed-loop linearizable gets of keys read from a file (one a line, picked at
// random), through etcd's official Go client (clientv3). goload's gets read its own key
// space (bench/%08d); the scale bench fills with goload's unique `seq` keys, which only
// the acknowledged-key files name. Every get must find its key: a miss is an error.
// Prints one JSON line: ops, errors, ops_per_s, p50_ms, p99_ms.
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

func fail(err error) {
	fmt.Fprintln(os.Stderr, "getload:", err)
	os.Exit(1)
}

func readKeys(files []string) []string {
	var keys []string
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			fail(err)
		}
		s := bufio.NewScanner(f)
		for s.Scan() {
			if line := s.Text(); line != "" {
				keys = append(keys, line)
			}
		}
		if err := s.Err(); err != nil {
			fail(err)
		}
		f.Close()
	}
	return keys
}

func main() {
	endpoints := flag.String("endpoints", "127.0.0.1:2379", "comma-separated endpoints")
	clients := flag.Int("clients", 64, "requests in flight")
	conns := flag.Int("conns", 8, "gRPC connections")
	warmup := flag.Duration("warmup", 500*time.Millisecond, "load before the measured window")
	duration := flag.Duration("duration", 10*time.Second, "measured window")
	flag.Parse()
	keys := readKeys(flag.Args())
	if len(keys) == 0 || *clients < 1 || *conns < 1 {
		fail(fmt.Errorf("usage: getload [flags] KEYFILE...: needs keys, -clients and -conns >= 1"))
	}
	cs := make([]*clientv3.Client, *conns)
	for i := range cs {
		c, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(*endpoints, ","), DialTimeout: 5 * time.Second})
		if err != nil {
			fail(err)
		}
		defer c.Close()
		cs[i] = c
	}
	from := time.Now().Add(*warmup)
	to := from.Add(*duration)
	lats := make([][]time.Duration, *clients)
	errs := make([]int, *clients)
	var wg sync.WaitGroup
	for w := 0; w < *clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			kv := cs[w%len(cs)]
			rnd := rand.New(rand.NewSource(int64(w)))
			for {
				t0 := time.Now()
				if !t0.Before(to) {
					return
				}
				r, err := kv.Get(context.Background(), keys[rnd.Intn(len(keys))])
				t1 := time.Now()
				if t0.Before(from) || t1.After(to) {
					continue
				}
				if err != nil || len(r.Kvs) != 1 {
					errs[w]++
					continue
				}
				lats[w] = append(lats[w], t1.Sub(t0))
			}
		}(w)
	}
	wg.Wait()
	var all []time.Duration
	errors := 0
	for w := range lats {
		all = append(all, lats[w]...)
		errors += errs[w]
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	percentile := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000
	}
	out, _ := json.Marshal(map[string]interface{}{
		"op": "get-lin", "clients": *clients, "conns": *conns, "keys": len(keys), "ops": len(all), "errors": errors,
		"ops_per_s": float64(len(all)) / duration.Seconds(), "p50_ms": percentile(0.5), "p99_ms": percentile(0.99),
	})
	fmt.Println(string(out))
}
