#!/usr/bin/env bash
# CPU seconds of test files before and after a change, run alternately in one session so
# that both see the same machine load (on a shared machine wall times swing 2-5x; CPU seconds
# of the file's worker and every process it started are steadier: test/cpu-seconds.ts).
#
#   bench/suite/compare.sh REV ROUNDS FILE...
#
# REV is the commit the "before" copy of each FILE comes from (e.g. HEAD~1). Each round runs
# every FILE's before copy (written beside it as NAME.before.test.ts, so its imports resolve,
# and removed on every way out) then its current version. Prints one line per run:
# "before|after FILE cpu-seconds wall-seconds pass|fail".
set -uo pipefail
cd "$(dirname "$0")/../.."
rev=$1 rounds=$2
shift 2
copies=()
trap 'rm -f "${copies[@]}"' EXIT
for f in "$@"; do
  b="${f%.test.ts}.before.test.ts"
  git show "$rev:$f" >"$b" || exit 1
  copies+=("$b")
done
log=$(mktemp)
copies+=("$log")
run() { # label file
  : >"$log"
  local t0=$(date +%s.%N) status=pass
  ETCD_TS_CPU_LOG="$log" npx vitest run "$2" >/dev/null 2>&1 || status=fail
  local t1=$(date +%s.%N)
  local cpu=$(node -e 'const l=require("fs").readFileSync(process.argv[1],"utf8").trim().split("\n").filter(Boolean);console.log(l.map((x)=>JSON.parse(x).cpuSeconds).reduce((a,b)=>a+b,0).toFixed(1))' "$log")
  echo "$1 $3 $cpu $(echo "$t1 - $t0" | bc | xargs printf '%.0f') $status"
}
for ((r = 1; r <= rounds; r++)); do
  for f in "$@"; do
    run before "${f%.test.ts}.before.test.ts" "$f"
    run after "$f" "$f"
  done
done
