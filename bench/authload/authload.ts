// The benches' side of authload (main.go beside this file): building it, and turning auth
// on (and off again) in a running cluster the way an operator does, with stock etcdctl.

import { execFileSync, spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { goBinary } from '../go-binary.js';

const sourceDir = path.dirname(fileURLToPath(import.meta.url));

/** The user the load runs as: readwrite on the prefix goload's and authload's keys share, nothing else. */
const BENCH_USER = { name: 'bench', password: 'bench-pw', role: 'bench', prefix: 'bench/' } as const;
const ROOT_PASSWORD = 'root-pw';

/** authload's binary, built under /tmp when missing or older than its source. */
export function authloadBinary(out = path.join(os.tmpdir(), 'etcdts-authload')): string {
  return goBinary(sourceDir, out);
}

/** stock etcdctl against `endpoints`, its output dropped (a failure throws with its stderr) */
function etcdctl(endpoints: readonly string[], ...args: string[]): void {
  execFileSync('etcdctl', ['--endpoints', endpoints.join(','), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * root (with the root role) and BENCH_USER (a role with readwrite on BENCH_USER.prefix),
 * then `auth enable`: from here on every request needs a token.
 */
export function enableAuth(endpoints: readonly string[]): void {
  etcdctl(endpoints, 'role', 'add', 'root');
  etcdctl(endpoints, 'user', 'add', `root:${ROOT_PASSWORD}`);
  etcdctl(endpoints, 'user', 'grant-role', 'root', 'root');
  etcdctl(endpoints, 'role', 'add', BENCH_USER.role);
  etcdctl(endpoints, 'role', 'grant-permission', BENCH_USER.role, '--prefix=true', 'readwrite', BENCH_USER.prefix);
  etcdctl(endpoints, 'user', 'add', `${BENCH_USER.name}:${BENCH_USER.password}`);
  etcdctl(endpoints, 'user', 'grant-role', BENCH_USER.name, BENCH_USER.role);
  etcdctl(endpoints, 'auth', 'enable');
}

/** `auth disable` as root (users and roles stay): the member serves requests without credentials again. */
export function disableAuth(endpoints: readonly string[]): void {
  etcdctl(endpoints, '--user', `root:${ROOT_PASSWORD}`, 'auth', 'disable');
}

/** authload's arguments for BENCH_USER's credentials. */
function benchUserArgs(): string[] {
  return ['-user', BENCH_USER.name, '-password', BENCH_USER.password];
}

/**
 * Runs authload with -wait: `connected` is called once every connection is up (and, as
 * BENCH_USER, has authenticated), before any load: what it measures then leaves out the
 * Authenticate calls, one bcrypt each. `asUser: false` runs it without credentials, the
 * same client and load for the auth-off side of an on/off comparison. Resolves with
 * authload's output.
 */
export function runAuthload(binary: string, args: readonly string[], connected: () => void, asUser = true): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(binary, [...args, ...(asUser ? benchUserArgs() : []), '-wait'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => {
      const before = stderr;
      stderr += d.toString();
      if (!before.includes('connected\n') && stderr.includes('connected\n')) {
        connected();
        p.stdin.write('\n');
      }
    });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`authload exited with ${code}: ${stderr.trim()}`))));
  });
}
