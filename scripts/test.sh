#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the suites drive when it is
# missing (stock etcdctl 3.4 from Debian's etcd-client; real etcd 3.4 from etcd-server,
# which the compatibility tests compare against; the python-etcd3 and etcd3gw client
# libraries), builds, then runs every vitest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v etcdctl >/dev/null 2>&1 || missing+=(etcd-client)
[ -x /usr/bin/etcd ] || missing+=(etcd-server)
/usr/bin/python3 -c 'import etcd3' >/dev/null 2>&1 || missing+=(python3-etcd3)
/usr/bin/python3 -c 'import etcd3gw' >/dev/null 2>&1 || missing+=(python3-etcd3gw)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (Debian packages)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
npx tsc -p tsconfig.json
if [ $# -gt 0 ]; then
  exec npx vitest run "$@"
fi
# `etcdctl check perf` judges latency (slowest request under 0.5 s): it runs on its own,
# after the other suites, so that their load on a small machine is not what it measures.
npx vitest run --exclude test/e2e/check-perf.test.ts
npx vitest run test/e2e/check-perf.test.ts
