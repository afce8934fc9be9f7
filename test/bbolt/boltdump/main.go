// boltdump: the real go.etcd.io/bbolt (Debian's golang-github-coreos-bbolt-dev) as the
// judge of the files etcd-ts reads and writes. Built in GOPATH mode by test/bbolt/real-bolt.ts.
//
//	boltdump check PATH   exit 0 when bbolt opens the file, tx.Check finds nothing and
//	                      its cursors read every key and value of every bucket
//	boltdump dump PATH    every bucket and key/value, hex, in bbolt's cursor order
//
// Any error or panic inside bbolt prints one line to stderr and exits non-zero (a
// fault inside tx.Check's own goroutine kills the process, which is non-zero too).
package main

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: boltdump check|dump PATH")
		os.Exit(2)
	}
	// A page pointer beyond the mapping is a panic here rather than a fatal fault.
	debug.SetPanicOnFault(true)
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintln(os.Stderr, "panic:", r)
			os.Exit(1)
		}
	}()
	db, err := bolt.Open(os.Args[2], 0400, &bolt.Options{ReadOnly: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(1)
	}
	defer db.Close()
	switch os.Args[1] {
	case "check":
		err = db.View(func(tx *bolt.Tx) error {
			var first error
			for e := range tx.Check() {
				fmt.Fprintln(os.Stderr, "check:", e)
				if first == nil {
					first = e
				}
			}
			if first != nil {
				return first
			}
			var n int
			return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
				return b.ForEach(func(k, v []byte) error {
					n += len(k) + len(v)
					if len(v) > 0 {
						n += int(v[len(v)-1])
					}
					return nil
				})
			})
		})
	case "dump":
		w := bufio.NewWriter(os.Stdout)
		err = db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
				fmt.Fprintf(w, "B %s\n", hex.EncodeToString(name))
				return b.ForEach(func(k, v []byte) error {
					fmt.Fprintf(w, "K %s %s\n", hex.EncodeToString(k), hex.EncodeToString(v))
					return nil
				})
			})
		})
		w.Flush()
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
