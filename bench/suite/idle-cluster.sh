#!/usr/bin/env bash
# CPU seconds a three-member cluster burns while idle, as the lease checkpoint test's
# clusters spend five minutes: bench/suite/idle-cluster.sh etcd|etcd-ts SECONDS [FLAG...]
# (the flags go to every member). Members on 127.0.0.1, killed by PID, data dirs removed.
set -uo pipefail
which=$1 secs=$2
shift 2
source "$(dirname "$0")/../three-members.sh"
d=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait; rm -rf "$d"' EXIT
start_three "$which" "$d" "$@"
sleep 15 # started and elected
a=$(three_ticks)
sleep "$secs"
b=$(three_ticks)
echo "$which $*: $(echo "scale=2; ($b - $a) / 100" | bc) CPU s in $secs s (3 members), load $(cut -d' ' -f1-3 /proc/loadavg)"
