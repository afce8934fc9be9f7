#!/usr/bin/env bash
# CPU seconds a three-member cluster burns while idle, as the lease checkpoint test's
# clusters spend five minutes: bench/suite/idle-cluster.sh etcd|etcd-ts SECONDS [FLAG...]
# (the flags go to every member). Members on 127.0.0.1, killed by PID, data dirs removed.
set -uo pipefail
which=$1 secs=$2
shift 2
root=$(cd "$(dirname "$0")/../.." && pwd)
d=$(mktemp -d)
base=$((15000 + RANDOM % 4000))
ic=""
for i in 1 2 3; do ic="$ic${ic:+,}m$i=http://127.0.0.1:$((base + i * 2 + 1))"; done
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait; rm -rf "$d"' EXIT
for i in 1 2 3; do
  c=$((base + i * 2)) p=$((base + i * 2 + 1))
  args=(--name "m$i" --data-dir "$d/m$i" --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c"
    --listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" --initial-cluster "$ic" --initial-cluster-token "t$base" "$@")
  if [ "$which" = etcd ]; then etcd "${args[@]}" >"$d/log$i" 2>&1 & else node "$root/bin/etcd-ts" "${args[@]}" >"$d/log$i" 2>&1 & fi
  pids+=($!)
done
sleep 15 # started and elected
ticks() { local s=0 f; for p in "${pids[@]}"; do read -r -a f <"/proc/$p/stat"; s=$((s + f[13] + f[14])); done; echo "$s"; }
a=$(ticks)
sleep "$secs"
b=$(ticks)
echo "$which $*: $(echo "scale=2; ($b - $a) / 100" | bc) CPU s in $secs s (3 members), load $(cut -d' ' -f1-3 /proc/loadavg)"
