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
root=$(cd "$(dirname "$0")/../.." && pwd)
goload=${GOLOAD:-/tmp/goload}
d=$(mktemp -d "$root/.bench-first-seconds.XXXXXX")
base=$((15000 + RANDOM % 4000))
ic="" eps=""
for i in 1 2 3; do ic="$ic${ic:+,}m$i=http://127.0.0.1:$((base + i * 2 + 1))"; done
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; rm -rf "$d"' EXIT
for i in 1 2 3; do
  c=$((base + i * 2)) p=$((base + i * 2 + 1))
  eps="$eps${eps:+,}127.0.0.1:$c"
  args=(--name "m$i" --data-dir "$d/m$i" --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c"
    --listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" --initial-cluster "$ic"
    --initial-cluster-token "t$base" --log-level warn)
  if [ "$which" = etcd ]; then etcd "${args[@]}" >"$d/log$i" 2>&1 & else node "$@" "$root/bin/etcd-ts" "${args[@]}" >"$d/log$i" 2>&1 & fi
  pids+=($!)
done
for _ in $(seq 1 150); do etcdctl --endpoints="$eps" endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
"$goload" -endpoints "$eps" -op fill -keys 1000 >/dev/null
ticks() { local s=0 f; for p in "${pids[@]}"; do read -r -a f <"/proc/$p/stat"; s=$((s + f[13] + f[14])); done; echo "$s"; }
tck=$(getconf CLK_TCK)
echo "second puts/s p50_ms cluster_cpu_us_per_put ($which $*)"
for ((w = 1; w <= windows; w++)); do
  a=$(ticks)
  out=$("$goload" -endpoints "$eps" -op put -clients 1 -duration 1s -warmup 1ms)
  b=$(ticks)
  node -e 'const r = JSON.parse(process.argv[1]); const us = ((process.argv[3] - process.argv[2]) * 1e6) / process.argv[4] / r.ops;
    console.log(`${process.argv[5]} ${r.ops_per_s.toFixed(0)} ${r.p50_ms.toFixed(2)} ${us.toFixed(0)}`)' "$out" "$a" "$b" "$tck" "$w"
done
