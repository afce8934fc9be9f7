// The real go.etcd.io/bbolt 1.3.6 (Debian's source, built offline in GOPATH mode) as the
// judge of bbolt files: `check` runs bbolt's own tx.Check, `dump` lists every bucket and
// key/value as bbolt's cursors see them. Our reader's view is dumped in the same format.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { BoltFile } from '../../src/bbolt/index.js';
import { repoRoot } from '../e2e/harness.js';

const run = promisify(execFile);
const source = path.join(repoRoot, 'test/bbolt/boltdump');

let built: Promise<string> | undefined;

/** Builds boltdump once per source version (cached in the temp dir across runs). */
export function boltdump(): Promise<string> {
  built ??= (async () => {
    const hash = createHash('sha256').update(readFileSync(path.join(source, 'main.go'))).digest('hex').slice(0, 12);
    const out = path.join(os.tmpdir(), `etcd-ts-boltdump-${hash}`);
    if (!existsSync(out)) {
      const tmp = `${out}.${process.pid}`;
      await run('go', ['build', '-o', tmp, '.'], {
        cwd: source,
        env: { ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOFLAGS: '', GOCACHE: process.env.GOCACHE ?? '/tmp/gocache' },
      });
      await run('mv', [tmp, out]);
    }
    return out;
  })();
  return built;
}

export interface CheckResult {
  ok: boolean;
  /** bbolt's complaints (or its panic) when not ok */
  output: string;
}

/** bbolt's verdict on a file: opened and tx.Check found nothing. A hang counts as bad. */
export async function boltCheck(file: string): Promise<CheckResult> {
  try {
    await run(await boltdump(), ['check', file], { timeout: 60_000 });
    return { ok: true, output: '' };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return { ok: false, output: e.stderr || e.message };
  }
}

/** Every bucket and key/value as real bbolt reads them (`B name` / `K key value`, hex). */
export async function boltDump(file: string): Promise<string> {
  const { stdout } = await run(await boltdump(), ['dump', file], { maxBuffer: 1 << 30, timeout: 120_000 });
  return stdout;
}

/** The same listing as boltDump, read by etcd-ts's reader after its check(). */
export async function ourDump(file: string): Promise<string> {
  const f = await BoltFile.open(file);
  try {
    await f.check();
    const lines: string[] = [];
    for (const name of f.bucketNames()) {
      lines.push(`B ${name.toString('hex')}`);
      for await (const [k, v] of f.entries(name)) lines.push(`K ${k.toString('hex')} ${v.toString('hex')}`);
    }
    return lines.map((l) => `${l}\n`).join('');
  } finally {
    await f.close();
  }
}
