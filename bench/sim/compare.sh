#!/usr/bin/env bash
# Alternates bench/sim/cpu.ts between an older tree and this one, ROUNDS times, for the
# raft-only and the whole-member simulator: one JSON line per run.
#   bench/sim/compare.sh OLD_TREE [ROUNDS] [TO]
# OLD_TREE: e.g. mkdir /tmp/old && git archive <commit> | tar -x -C /tmp/old && ln -s "$PWD/node_modules" /tmp/old/
set -euo pipefail
old=$1 rounds=${2:-2} to=${3:-40}
cd "$(dirname "$0")/../.."
for r in $(seq "$rounds"); do
  for members in "" --members; do
    for root in "$old" .; do
      echo "round $r load $(cut -d' ' -f1 /proc/loadavg) $(node --import tsx bench/sim/cpu.ts --root "$root" --to "$to" $members)"
    done
  done
done
