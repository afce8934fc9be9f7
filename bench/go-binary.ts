// The benches' own Go load clients (bench/authload, bench/scale/getload), built on etcd's
// official Go client in GOPATH mode on Debian's golang-etcd-server-dev, as
// /work/shared/goload/build.sh builds goload.

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The binary built from the Go sources in `sourceDir` into `out`, rebuilt when missing or older than its source. */
export function goBinary(sourceDir: string, out: string): string {
  const newestSource = Math.max(...readdirSync(sourceDir).filter((f) => f.endsWith('.go')).map((f) => statSync(path.join(sourceDir, f)).mtimeMs));
  if (existsSync(out) && statSync(out).mtimeMs >= newestSource) return out;
  console.error(`building ${path.basename(out)} into ${out} (Debian golang-go + golang-etcd-server-dev)`);
  execFileSync('go', ['build', '-o', out, '.'], {
    cwd: sourceDir,
    stdio: 'inherit',
    env: { ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOFLAGS: '', GOCACHE: process.env.GOCACHE ?? path.join(os.tmpdir(), 'gocache') },
  });
  return out;
}
