// goload (etcd's official Go client, clientv3 3.4, as a load generator: the team's tool, its
// source kept beside this file in goload/ so that a fresh clone builds it) as the client of a test: its `seq` mode puts unique keys and writes each acknowledged one
// to a file, which the test reads while it runs and checks against the members at the end.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { goBinary } from '../../bench/go-binary.js';
import { repoRoot, tempDir, track } from './harness.js';

/** goload's binary, built from test/e2e/goload (Debian golang-go + golang-etcd-server-dev, which scripts/test.sh installs) when missing or stale. */
export function goloadBinary(): string {
  return goBinary(path.join(repoRoot, 'test/e2e/goload'), path.join(os.tmpdir(), 'etcdts-test-goload'));
}

/** A key goload reports acknowledged: `acked/<run>-<sequence>`, hex. */
const ACKED_KEY = /^acked\/[0-9a-f]{8}-[0-9a-f]{16}$/;

export interface SeqOutcome {
  /** every key goload reported acknowledged, in the order it did */
  acked: string[];
  /** the longest time no put was acknowledged, from the first acknowledgement to the stop (polled every POLL_MS) */
  longestAckGapMs: number;
  /** when that gap began (Date.now() at the last acknowledgement before it) */
  longestAckGapFrom: number;
}

const POLL_MS = 20;

/**
 * `goload -op seq` with `clients` puts in flight (each with a 2 s deadline, never
 * retried: a failed key is simply not acknowledged) against `endpoints` (host:port; those
 * not up yet are dialled again by clientv3's balancer until they are), until stopped.
 * Each client starts a put every `intervalMs` at most: a test needs writes going on
 * throughout, and a cluster taking as many as it can spends the suite's CPU on them.
 */
export function seqLoad(endpoints: readonly string[], clients: number, intervalMs: number): { acked(): string[]; stop(): Promise<SeqOutcome> } {
  const file = path.join(tempDir('goload-'), 'acked');
  const proc: ChildProcess = spawn(
    goloadBinary(),
    ['-endpoints', endpoints.join(','), '-op', 'seq', '-acked', file, '-clients', String(clients), '-conns', '1', '-duration', '1h', '-interval', `${intervalMs}ms`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  track(proc);
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  // Every put goload acknowledges is one write(2) of "key\n" to the file: its size grows
  // with each acknowledgement, so a size that stays put is a stretch without any.
  let size = 0;
  let lastGrowth: number | undefined;
  let longestAckGapMs = 0;
  let longestAckGapFrom = 0;
  const gapEnded = (now: number): void => {
    if (lastGrowth === undefined || now - lastGrowth <= longestAckGapMs) return;
    longestAckGapMs = now - lastGrowth;
    longestAckGapFrom = lastGrowth;
  };
  const poll = setInterval(() => {
    const now = Date.now();
    const s = existsSync(file) ? statSync(file).size : 0;
    if (s > size) {
      gapEnded(now);
      size = s;
      lastGrowth = now;
    }
  }, POLL_MS);
  const acked = (): string[] => {
    if (!existsSync(file)) return [];
    // a line still being written (no newline yet) is not counted
    const lines = readFileSync(file, 'utf8').split('\n').slice(0, -1);
    const bad = lines.find((l) => !ACKED_KEY.test(l));
    if (bad !== undefined) throw new Error(`goload wrote ${JSON.stringify(bad)} to ${file}`);
    return lines;
  };
  return {
    acked,
    async stop() {
      clearInterval(poll);
      if (proc.exitCode !== null) throw new Error(`goload exited early (${proc.exitCode}): ${stderr}`);
      gapEnded(Date.now());
      proc.kill('SIGTERM');
      await exited;
      return { acked: acked(), longestAckGapMs, longestAckGapFrom };
    },
  };
}
