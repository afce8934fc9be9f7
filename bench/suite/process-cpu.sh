#!/usr/bin/env bash
# One `npm test` of REV under BSD process accounting, then its CPU by kind of process
# (process-cpu.ts): bench/suite/process-cpu.sh [REV]   (root; installs Debian's acct if missing)
#
# Every node process is called "node" in the accounting file, so the run is made in a
# clone whose test harness starts members with a copy of node named etcdtsnode and the
# simulators' children with one named simnode; nothing else in the clone changes. Run it
# on a quiet machine: the accounting sees every process, other people's included.
set -euo pipefail
rev=${1:-HEAD}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/process-cpu.XXXXXX)
# mktemp makes it 0700; the systemd test runs a member as an unprivileged user, who must reach the clone
chmod 755 "$work"
command -v accton >/dev/null || { apt-get update -qq && apt-get install -y -qq acct >/dev/null; }
git clone -q "$root" "$work/clone"
cd "$work/clone"
git checkout -q "$rev"
ln -s "$root/node_modules" node_modules
cp "$(command -v node)" "$work/etcdtsnode"
cp "$(command -v node)" "$work/simnode"
# the three places members and simulator children are spawned; each must be found
rename() {
  local file=$1 from=$2 to=$3
  grep -qF "$from" "$file" || { echo "process-cpu.sh: '$from' not found in $file: update this script" >&2; exit 1; }
  FROM=$from TO=$to perl -pi -e 's/\Q$ENV{FROM}\E/$ENV{TO}/' "$file"
}
rename test/e2e/harness.ts "cmd: process.execPath, argv: [path.join(repoRoot, 'bin/etcd-ts')" "cmd: '$work/etcdtsnode', argv: [path.join(repoRoot, 'bin/etcd-ts')"
rename verify/cluster.ts "[process.execPath, [path.join(REPO_ROOT, 'bin', 'etcd-ts')" "['$work/etcdtsnode', [path.join(REPO_ROOT, 'bin', 'etcd-ts')"
rename test/raft/sim-runner.ts "spawn(process.execPath, [script, kind" "spawn('$work/simnode', [script, kind"
npm run --silent build >/dev/null
touch "$work/pacct"
accton "$work/pacct"
trap 'accton off' EXIT
npm test >"$work/npm-test.log" 2>&1 || echo "npm test failed: $work/npm-test.log"
accton off
trap - EXIT
grep -a 'Duration\|passed, ' "$work/npm-test.log" | sed 's/\x1b\[[0-9;]*m//g'
dump-acct "$work/pacct" | "$root/node_modules/.bin/tsx" "$root/bench/suite/process-cpu.ts" etcdtsnode
echo "(accounting file, log and clone in $work)"
