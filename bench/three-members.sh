# Sourced by the shell benches that need a three-member cluster of etcd or etcd-ts on
# 127.0.0.1 (bench/suite/idle-cluster.sh, bench/server/first-seconds.sh).
#
#   start_three etcd|etcd-ts DIR [MEMBER_FLAG...]
#
# starts the members with their data and logs under DIR (which the caller removes), the
# flags added to every member's; NODE_FLAGS (an array, may be unset) go to node before
# bin/etcd-ts. Sets `pids` (kill them by PID on the way out) and `eps` (the client
# endpoints, comma-separated). `three_ticks` prints the CPU ticks the three have used.

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

start_three() {
  local which=$1 dir=$2 base=$((15000 + RANDOM % 4000)) ic="" i c p
  shift 2
  for i in 1 2 3; do ic="$ic${ic:+,}m$i=http://127.0.0.1:$((base + i * 2 + 1))"; done
  pids=() eps=""
  for i in 1 2 3; do
    c=$((base + i * 2)) p=$((base + i * 2 + 1))
    eps="$eps${eps:+,}127.0.0.1:$c"
    local args=(--name "m$i" --data-dir "$dir/m$i" --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c"
      --listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" --initial-cluster "$ic"
      --initial-cluster-token "t$base" "$@")
    if [ "$which" = etcd ]; then etcd "${args[@]}" >"$dir/log$i" 2>&1 &
    else node ${NODE_FLAGS[@]+"${NODE_FLAGS[@]}"} "$bench_root/bin/etcd-ts" "${args[@]}" >"$dir/log$i" 2>&1 & fi
    pids+=($!)
  done
}

three_ticks() {
  local s=0 f p
  for p in "${pids[@]}"; do read -r -a f <"/proc/$p/stat"; s=$((s + f[13] + f[14])); done
  echo "$s"
}
