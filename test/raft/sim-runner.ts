// One child process per test file runs a range of simulator seeds (sim-seeds-child.ts,
// packed by test/child-script.ts) and streams each seed's result; the file's tests, one
// per chunk of seeds, each wait for their own. One child for all chunks: the simulator's
// code is compiled and warmed up once, as it was when the seeds ran in the worker.

import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SimResult } from '../../src/raft/sim/index.js';
import { childScript } from '../child-script.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'sim-seeds-child.ts');

export interface SeedRuns {
  /** the results of seeds from..to, in order, once all have run */
  range(from: number, to: number): Promise<SimResult[]>;
  /** Kills the child if it still runs (from afterAll: a failed chunk leaves it running) and waits for it. */
  stop(): Promise<void>;
}

/** Seeds from..to of one kind, run in a child process from the first range() asked for. */
export function runSeedsInChild(kind: 'raft' | 'members', from: number, to: number): SeedRuns {
  const waiting = new Map<number, { resolve: (r: SimResult) => void; reject: (e: Error) => void }>();
  const results = new Map<number, Promise<SimResult>>();
  for (let seed = from; seed <= to; seed++) {
    results.set(seed, new Promise<SimResult>((resolve, reject) => waiting.set(seed, { resolve, reject })));
    // a test that stops waiting (a failed chunk) must not leave the others' rejections unhandled
    results.get(seed)!.catch(() => undefined);
  }
  const failAll = (err: Error): void => {
    for (const w of waiting.values()) w.reject(err);
    waiting.clear();
  };
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let started: Promise<void> | undefined;
  // started by the first test that asks, so a run filtered to other tests starts nothing
  const start = (): Promise<void> => (started ??= childScript(CHILD).then(
    (script) => {
      const c = spawn(process.execPath, [script, kind, String(from), String(to)], { stdio: ['ignore', 'pipe', 'pipe'] });
      child = c;
      exited = new Promise((resolve) => c.on('close', () => resolve()));
      let pending = '';
      let stderr = '';
      c.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        pending += chunk;
        for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n')) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          // a result is one JSON object a line; anything else the seeds printed is passed on
          if (!line.startsWith('{"seed":')) {
            process.stdout.write(`${line}\n`);
            continue;
          }
          const res = JSON.parse(line) as SimResult;
          waiting.get(res.seed)?.resolve(res);
          waiting.delete(res.seed);
        }
      });
      c.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      c.on('close', (code, signal) => failAll(new Error(`the simulator child exited (${signal ?? code}) before every seed had run: ${stderr.slice(-2000)}`)));
    },
    (err: Error) => failAll(err),
  ));
  return {
    range: (a, b) => {
      void start();
      return Promise.all(Array.from({ length: b - a + 1 }, (_, i) => results.get(a + i)!));
    },
    async stop() {
      if (started === undefined) return;
      await started;
      if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
