// kill -9 while a child process applies and commits: after reopening, the data must be
// exactly the entries up to the stored consistent index (one LevelDB batch carries
// both), and replaying from there continues the same history.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MvccStore } from '../../src/mvcc/index.js';
import { childScript } from '../child-script.js';
import { removeDir, scratchDir } from './helpers.js';

const CHILD = fileURLToPath(new URL('./crash-child.ts', import.meta.url));

/** Runs the child until it reports at least `atLeast` applied entries, then SIGKILLs it. */
async function runAndKill(dir: string, atLeast: number): Promise<number> {
  const child = spawn(process.execPath, [await childScript(CHILD), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let reported = 0;
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) reported = Number(l);
      if (reported >= atLeast && child.exitCode === null) child.kill('SIGKILL');
    });
    child.once('exit', (code, signal) => (signal === 'SIGKILL' ? resolve(reported) : reject(new Error(`child exited with ${code}`))));
  });
}

/** What entries 1..c leave behind (see crash-child.ts). */
function expected(c: number): Map<string, { value: string; version: number }> {
  const m = new Map<string, { value: string; version: number }>();
  const put = (k: string, v: string) => m.set(k, { value: v, version: (m.get(k)?.version ?? 0) + 1 });
  for (let i = 1; i <= c; i++) {
    put(`k${i % 37}`, `v${i}`);
    if (i % 3 === 0) put(`m${i % 11}`, `w${i}`);
  }
  return m;
}

async function verify(dir: string, reported: number): Promise<number> {
  const store = await MvccStore.open({ dir });
  try {
    const c = store.consistentIndex;
    // everything committed before the last report was issued; the batch in flight may have landed too
    expect(c).toBeGreaterThanOrEqual(reported - 50);
    expect(store.currentRevision).toBe(c + 1);
    const r = await store.range({ key: Buffer.of(0), rangeEnd: Buffer.of(0) });
    const got = new Map(r.kvs.map((kv) => [kv.key.toString(), { value: kv.value.toString(), version: kv.version }]));
    expect(got).toEqual(expected(c));
    // history is intact too: the state at revision 1 + c/2 is entries 1..c/2
    const half = Math.floor(c / 2);
    const old = await store.range({ key: Buffer.of(0), rangeEnd: Buffer.of(0), revision: 1 + half });
    expect(new Map(old.kvs.map((kv) => [kv.key.toString(), { value: kv.value.toString(), version: kv.version }]))).toEqual(expected(half));
    return c;
  } finally {
    await store.close();
  }
}

describe('crash (SIGKILL) during apply', () => {
  it('keeps data and consistent index together, and resumes from it', async () => {
    const dir = scratchDir();
    try {
      let c = 0;
      for (const more of [1500, 2500, 1000]) {
        const reported = await runAndKill(dir, c + more);
        c = await verify(dir, reported);
      }
      expect(c).toBeGreaterThan(4000);
    } finally {
      removeDir(dir);
    }
  }, 120_000);
});
