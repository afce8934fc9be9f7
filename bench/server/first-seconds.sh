#!/usr/bin/env bash
# A three-member cluster's first seconds of load: puts at one client across the three
# endpoints (goload), in one-second windows from the first request on, right after the
# start and a 1000-key fill. Prints each window's puts/s, p50 and the cluster's CPU per put.
# An etcd-ts member compiles its hot paths as they run (V8's JIT), so its first windows
# are slower than its later ones; etcd's are flat (bench/server/README.md).
#
#   bench/server/first-seconds.sh etcd|etcd-ts [WINDOWS] [NODE_FLAG...]
#
# NODE_FLAGs go to node before bin/etcd-ts (e.g. --interrupt-budget=16896). Members on
# 127.0.0.1 with data under the repository (the disk bench:server uses), killed by PID and
# their data removed on every way out. Needs goload (GOLOAD, default /tmp/goload).
set -uo pipefail
which=$1 windows=${2:-10}
shift $(($# < 2 ? $# : 2))
source "$(dirname "$0")/../three-members.sh"
goload=${GOLOAD:-/tmp/goload}
d=$(mktemp -d "$bench_root/.bench-first-seconds.XXXXXX")
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; rm -rf "$d"' EXIT
NODE_FLAGS=("$@")
start_three "$which" "$d" --log-level warn
for _ in $(seq 1 150); do etcdctl --endpoints="$eps" endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
"$goload" -endpoints "$eps" -op fill -keys 1000 >/dev/null
tck=$(getconf CLK_TCK)
echo "second puts/s p50_ms cluster_cpu_us_per_put ($which $*)"
for ((w = 1; w <= windows; w++)); do
  a=$(three_ticks)
  out=$("$goload" -endpoints "$eps" -op put -clients 1 -duration 1s -warmup 1ms)
  b=$(three_ticks)
  node -e 'const r = JSON.parse(process.argv[1]); const us = ((process.argv[3] - process.argv[2]) * 1e6) / process.argv[4] / r.ops;
    console.log(`${process.argv[5]} ${r.ops_per_s.toFixed(0)} ${r.p50_ms.toFixed(2)} ${us.toFixed(0)}`)' "$out" "$a" "$b" "$tck" "$w"
done
