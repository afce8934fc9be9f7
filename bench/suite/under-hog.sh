#!/usr/bin/env bash
# The whole suite on a loaded machine, as issue 15 asks of it: `npm test` RUNS times in a
# row (default 2) while a busy loop spins on every core, so the suite gets about half the
# CPU it gets alone. Prints each run's summary line ("N passed, M failed"), vitest's
# Duration and the load average at its end; each run's whole output is kept in
# $OUT/run-N.log (OUT defaults to a new directory under /tmp).
#
#   bench/suite/under-hog.sh [RUNS]
#
# The hog is one `sh` busy loop per core at the suite's priority, killed by PID on every way
# out. Exits non-zero when any run failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-2}
out=${OUT:-$(mktemp -d /tmp/under-hog.XXXXXX)}
hogs=()
trap 'kill "${hogs[@]}" 2>/dev/null; wait "${hogs[@]}" 2>/dev/null' EXIT
for ((c = 0; c < $(nproc); c++)); do
  sh -c 'while :; do :; done' &
  hogs+=($!)
done
echo "hog: ${#hogs[@]} busy loops (pids ${hogs[*]}); logs in $out"
status=0
for ((r = 1; r <= runs; r++)); do
  start=$(date +%s)
  npm test >"$out/run-$r.log" 2>&1 || status=1
  plain=$(sed 's/\x1b\[[0-9;]*m//g' "$out/run-$r.log")
  echo "run $r: $(grep -E '^[0-9]+ passed, [0-9]+ failed' <<<"$plain" | tail -1);" \
    "vitest $(grep -oE 'Duration +[0-9.]+s' <<<"$plain" | tail -1 | tr -s ' ');" \
    "npm test $(($(date +%s) - start)) s; load $(cut -d' ' -f1-3 /proc/loadavg)"
done
exit $status
