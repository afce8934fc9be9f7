// A disk that refuses a write while writeBolt has pages in flight: the write that fails
// runs while the next pages are being laid out, and its error must still reach the
// caller (never an unhandled rejection that kills the process) with the partial file
// removed. The refusal is real: the child runs under `ulimit -f`, so the kernel stops
// the file at that size with EFBIG.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { childScript } from '../child-script.js';
import { cleanup, tempDir } from '../e2e/harness.js';

afterAll(cleanup);

const CHILD = fileURLToPath(new URL('./write-fault-child.ts', import.meta.url));

async function runLimited(file: string, limitKiB: number): Promise<{ code: number | null; signal: string | null; out: string }> {
  const child = spawn('bash', ['-c', `ulimit -f ${limitKiB} && exec "$0" "$1" "$2"`, process.execPath, await childScript(CHILD), file], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, out }));
  });
}

it('rejects with the disk error and removes the file when the disk refuses a write part way', async () => {
  const dir = tempDir('etcd-ts-bbolt-fault-');
  for (const limitKiB of [512, 4096, 16384]) {
    const file = path.join(dir, `limited-${limitKiB}.db`);
    const r = await runLimited(file, limitKiB);
    expect(r, `limit ${limitKiB} KiB`).toMatchObject({ code: 0, signal: null });
    expect(r.out.trim(), `limit ${limitKiB} KiB`).toMatch(/^rejected: EFBIG /);
    expect(existsSync(file), `limit ${limitKiB} KiB`).toBe(false);
  }
  // without the limit the same child writes the file: the refusal was the limit's
  const file = path.join(dir, 'unlimited.db');
  expect((await runLimited(file, 1 << 20)).out.trim()).toBe('written');
}, 120_000);
