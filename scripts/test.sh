#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs stock etcdctl 3.4 (Debian's
# etcd-client) when it is missing, builds, then runs every vitest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v etcdctl >/dev/null 2>&1; then
  echo "installing stock etcdctl (Debian package etcd-client)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq etcd-client >/dev/null
fi
npx tsc -p tsconfig.json
npx vitest run "$@"
