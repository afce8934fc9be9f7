// The files behind a received snapshot store, on a real disk with real stores: saved
// whole or not at all, swapped in so that a crash at any step leaves a store to open.

import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MvccStore } from '../../src/mvcc/index.js';
import {
  receivedDbPath,
  removeReceivedDbs,
  restoreInterruptedSwap,
  saveReceivedDb,
  swapInReceivedDb,
} from '../../src/server/received-db.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function snapDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'etcd-ts-received-'));
  dirs.push(d);
  return d;
}

/** The snapshot stream of a store holding key k = value. */
async function storeBytes(value: string): Promise<Buffer> {
  const dir = path.join(snapDir(), 'db');
  const store = await MvccStore.open({ dir });
  await store.put({ key: Buffer.from('k'), value: Buffer.from(value), lease: 0n }, 1);
  await store.commit();
  const chunks: Buffer[] = [];
  for await (const c of store.snapshot().stream) chunks.push(c);
  await store.close();
  return Buffer.concat(chunks);
}

async function valueAt(dir: string): Promise<string | undefined> {
  const store = await MvccStore.open({ dir });
  try {
    return (await store.range({ key: Buffer.from('k') })).kvs[0]?.value.toString();
  } finally {
    await store.close();
  }
}

async function* chunks(b: Buffer): AsyncGenerator<Buffer> {
  for (let i = 0; i < b.length; i += 7) yield b.subarray(i, i + 7);
}

describe('received snapshot stores', () => {
  it('are named as etcd names the file, and appear only once complete; a failed save leaves nothing', async () => {
    const snap = snapDir();
    const at = receivedDbPath(snap, 0x1f4);
    expect(path.basename(at)).toBe('00000000000001f4.snap.db');
    const bytes = await storeBytes('new');
    await expect(saveReceivedDb(at, chunks(bytes.subarray(0, bytes.length - 3)))).rejects.toThrow(/truncated/);
    expect(readdirSync(snap)).toEqual([]);
    await saveReceivedDb(at, chunks(bytes));
    expect(readdirSync(snap)).toEqual(['00000000000001f4.snap.db']);
    expect(await valueAt(at)).toBe('new');
  });

  it('swap in for the live store; a swap cut between its renames gets the old store back at start, a finished one loses its leftover', async () => {
    const snap = snapDir();
    const db = path.join(snap, 'db');
    await saveReceivedDb(db, chunks(await storeBytes('old')));
    const received = receivedDbPath(snap, 9);
    await saveReceivedDb(received, chunks(await storeBytes('new')));

    // cut after the live store moved aside, before the received one moved in
    renameSync(db, `${db}.replaced`);
    await restoreInterruptedSwap(db);
    expect(await valueAt(db)).toBe('old');
    expect(existsSync(`${db}.replaced`)).toBe(false);
    expect(existsSync(received)).toBe(true);

    await swapInReceivedDb(db, received);
    expect(await valueAt(db)).toBe('new');
    expect(readdirSync(snap)).toEqual(['db']);

    // cut after both renames, before the old store was deleted
    mkdirSync(`${db}.replaced`);
    await restoreInterruptedSwap(db);
    expect(await valueAt(db)).toBe('new');
    expect(readdirSync(snap)).toEqual(['db']);
  });

  it('left over from a crash are all removed, complete or partial, and nothing else is', async () => {
    const snap = snapDir();
    for (const name of ['000000000000000a.snap.db', '000000000000000b.snap.db.part', 'db']) mkdirSync(path.join(snap, name));
    writeFileSync(path.join(snap, '0000000000000002-000000000000000a.snap'), '');
    expect((await removeReceivedDbs(snap)).sort()).toEqual(['000000000000000a.snap.db', '000000000000000b.snap.db.part']);
    expect(readdirSync(snap).sort()).toEqual(['0000000000000002-000000000000000a.snap', 'db']);
  });
});
