#!/bin/bash
# Puts at one client on a one-member cluster while a second member joins and catches up
# through the leader's snapshot (two voters: every put waits for the new member's ack).
#
#   bench/snapshot/member-join.sh fill etcd|etcd-ts [SECONDS]   # fills /tmp/member-join/<server> once (goload seq, 64 clients)
#   bench/snapshot/member-join.sh run etcd|<etcd-ts checkout> LABEL
#
# Needs goload at /tmp/goload (../shared/goload/build.sh). Ports 23791-23792 and 23801-23802
# on 127.0.0.1; every process it starts is killed by PID before it returns.
set -euo pipefail
KEEP=/tmp/member-join
ctl() { ETCDCTL_API=3 etcdctl --endpoints 127.0.0.1:23791 "$@"; }
member() { # member SERVER_CMD NAME DATA_DIR CLIENT PEER INITIAL_CLUSTER STATE LOG
  $1 --name "$2" --data-dir "$3" --listen-client-urls "http://127.0.0.1:$4" --advertise-client-urls "http://127.0.0.1:$4" \
    --listen-peer-urls "http://127.0.0.1:$5" --initial-advertise-peer-urls "http://127.0.0.1:$5" \
    --initial-cluster "$6" --initial-cluster-state "$7" --snapshot-count 1000 > "$8" 2>&1 &
}
healthy() { for _ in $(seq 1 300); do ctl endpoint health > /dev/null 2>&1 && return; sleep 0.2; done; echo "no healthy member" >&2; exit 1; }
cmd_of() { if [ "$1" = etcd ]; then echo etcd; else echo "node $1/bin/etcd-ts"; fi; }

case $1 in
fill)
  server=$2; seconds=${3:-50}
  cmd=$(cmd_of "$([ "$server" = etcd ] && echo etcd || realpath "$(dirname "$0")/../..")")
  rm -rf "$KEEP/$server" && mkdir -p "$KEEP"
  member "$cmd" a "$KEEP/$server" 23791 23801 a=http://127.0.0.1:23801 new "$KEEP/$server.log"
  pid=$!
  trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
  healthy
  /tmp/goload -endpoints 127.0.0.1:23791 -clients 64 -conns 8 -duration "${seconds}s" -op seq -warmup 0s | tail -1
  ;;
run)
  build=$2; label=$3
  src=$KEEP/$([ "$build" = etcd ] && echo etcd || echo etcd-ts)
  cmd=$(cmd_of "$build")
  run=$(mktemp -d /tmp/member-join-run.XXXXXX)
  cp -a "$src" "$run/a"
  member "$cmd" a "$run/a" 23791 23801 a=http://127.0.0.1:23801 new "$run/a.log"
  pa=$!
  pb=
  trap 'kill $pa $pb 2>/dev/null; wait $pa $pb 2>/dev/null || true; rm -rf "$run"' EXIT
  healthy
  ctl member add b --peer-urls http://127.0.0.1:23802 > /dev/null
  /tmp/goload -endpoints 127.0.0.1:23791 -clients 1 -duration 12s -op put -keys 1000 -warmup 0s > "$run/load.json" &
  load=$!
  sleep 0.5
  member "$cmd" b "$run/b" 23792 23802 a=http://127.0.0.1:23801,b=http://127.0.0.1:23802 existing "$run/b.log"
  pb=$!
  wait $load
  echo "$label: $(tail -1 "$run/load.json")"
  ;;
*)
  echo "usage: $0 fill etcd|etcd-ts [SECONDS] | run etcd|<etcd-ts checkout> LABEL" >&2
  exit 2
  ;;
esac
