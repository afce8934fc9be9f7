#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the suites drive when it is
# missing (stock etcdctl 3.4 from Debian's etcd-client; real etcd 3.4 from etcd-server,
# which the compatibility tests compare against; the python-etcd3 and etcd3gw client
# libraries; Go and bbolt's source for the bbolt tests; etcd's Go client for goload;
# Patroni and PostgreSQL for the Patroni tests; vip-manager and iproute2; dnsmasq for DNS
# discovery), builds, lints,
# then runs every vitest suite.
set -uo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v etcdctl >/dev/null 2>&1 || missing+=(etcd-client)
[ -x /usr/bin/etcd ] || missing+=(etcd-server)
/usr/bin/python3 -c 'import etcd3' >/dev/null 2>&1 || missing+=(python3-etcd3)
/usr/bin/python3 -c 'import etcd3gw' >/dev/null 2>&1 || missing+=(python3-etcd3gw)
# Patroni 3 and PostgreSQL 15: the Patroni tests run a PostgreSQL HA pair over the cluster.
command -v patroni >/dev/null 2>&1 || missing+=(patroni)
[ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)
# vip-manager 1.0 (a v2 client beside Patroni), in a network namespace that ip creates.
command -v vip-manager >/dev/null 2>&1 || missing+=(vip-manager)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
# dnsmasq answers SRV records in the DNS discovery test's network namespace.
[ -x /usr/sbin/dnsmasq ] || missing+=(dnsmasq-base)
# Go and bbolt's source: the bbolt tests build real bbolt 1.3 as the judge of our files.
command -v go >/dev/null 2>&1 || missing+=(golang-go)
[ -d /usr/share/gocode/src/go.etcd.io/bbolt ] || missing+=(golang-github-coreos-bbolt-dev)
# etcd's Go client (clientv3): the mixed-cluster test's load is goload (test/e2e/goload) on it.
[ -d /usr/share/gocode/src/go.etcd.io/etcd/clientv3 ] || missing+=(golang-etcd-server-dev)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (Debian packages)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# A type error fails the run here. tsc is incremental (tsconfig.json: dist/.tsbuildinfo):
# after `npm ci`'s prepare or a build of the same sources it only confirms that nothing
# changed (6 CPU s instead of 22, before any suite can start).
npx tsc -p tsconfig.json && node dist/scripts/bundle.js || exit 1
if [ $# -gt 0 ]; then
  exec npx vitest run "$@"
fi
# Every suite runs even when an earlier one fails; the run ends with one line
# "N passed, M failed" and the time each test file took (wall and CPU seconds).
report=$(mktemp -d)
trap 'rm -rf "$report"' EXIT
status=0
# The linter (eslint with typescript-eslint's type-aware rules: floating promises, unused
# names, explicit any): a finding fails the run, after every suite has run. It runs beside
# the suites (half a minute of one core that the suites' first minutes, mostly waiting on
# clusters, leave free) and prints what it found once they are done.
npm run --silent lint >"$report/lint.txt" 2>&1 &
lint=$!
ETCD_TS_CPU_LOG="$report/cpu.jsonl" npx vitest run --reporter=default --reporter=json --outputFile.json="$report/vitest.json" || status=$?
if wait "$lint"; then echo "lint: no finding"; else status=1; echo "lint failed:"; cat "$report/lint.txt"; fi
node scripts/test-summary.mjs "$report/vitest.json" "$report/cpu.jsonl" || status=$?
exit $status
