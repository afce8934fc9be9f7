// The files behind a database received with a snapshot, on a real disk with real stores:
// etcd's bbolt file saved whole or not at all, imported and swapped in so that a crash at
// any step leaves a store to open.

import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { BoltFormatError } from '../../src/bbolt/index.js';
import { MvccStore } from '../../src/mvcc/index.js';
import { writeEtcdBackend } from '../../src/server/backup/etcd-db.js';
import { installReceivedDb, receivedDbPath, removeReceivedDbs, restoreInterruptedSwap, saveReceivedDb } from '../../src/server/received-db.js';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'etcd-ts-received-'));
  dirs.push(d);
  return d;
}

async function storeWith(dir: string, value: string): Promise<MvccStore> {
  const store = await MvccStore.open({ dir });
  await store.put({ key: Buffer.from('k'), value: Buffer.from(value), lease: 0n }, 1);
  await store.commit();
  await store.flushed();
  return store;
}

/** etcd's backend database (a bbolt file) of a store holding key k = value, as a leader sends it. */
async function etcdDbBytes(value: string): Promise<Buffer> {
  const d = tmp();
  const store = await storeWith(path.join(d, 'db'), value);
  const view = store.bucketView();
  try {
    await writeEtcdBackend(path.join(d, 'bolt'), view, { members: [], removed: [], version: '3.4.0' });
  } finally {
    await view.close();
    await store.close();
  }
  return readFileSync(path.join(d, 'bolt'));
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
  for (let i = 0; i < b.length; i += 4093) yield b.subarray(i, i + 4093);
}

describe('received snapshot databases', () => {
  it("are named as etcd names the file, and appear only once complete and a whole bbolt file; a failed save leaves nothing", async () => {
    const snap = tmp();
    const at = receivedDbPath(snap, 0x1f4);
    expect(path.basename(at)).toBe('00000000000001f4.snap.db');
    const bytes = await etcdDbBytes('new');
    await expect(saveReceivedDb(at, chunks(bytes.subarray(0, bytes.length - 4096)))).rejects.toThrow(BoltFormatError);
    expect(readdirSync(snap)).toEqual([]);
    async function* cut(): AsyncGenerator<Buffer> {
      yield bytes.subarray(0, 4096);
      throw new Error('the connection closed');
    }
    await expect(saveReceivedDb(at, cut())).rejects.toThrow('the connection closed');
    expect(readdirSync(snap)).toEqual([]);
    await saveReceivedDb(at, chunks(bytes));
    expect(readdirSync(snap)).toEqual(['00000000000001f4.snap.db']);
    expect(readFileSync(at).equals(bytes)).toBe(true);
  });

  it('are imported and swapped in for the live store; a swap cut between its renames gets the old store back at start, a finished one loses its leftover', async () => {
    const d = tmp();
    const db = path.join(d, 'leveldb');
    const snap = path.join(d, 'snap');
    mkdirSync(snap);
    await (await storeWith(db, 'old')).close();
    const received = receivedDbPath(snap, 9);
    await saveReceivedDb(received, chunks(await etcdDbBytes('new')));

    // a crash left a half import and a whole one beside the received file: both are redone
    mkdirSync(`${received}.leveldb.import`);
    mkdirSync(`${received}.leveldb`);
    await installReceivedDb(db, received, log);
    expect(await valueAt(db)).toBe('new');
    expect(readdirSync(snap)).toEqual([]);
    expect(readdirSync(d).sort()).toEqual(['leveldb', 'snap']);

    // cut after the live store moved aside, before the received one moved in
    renameSync(db, `${db}.replaced`);
    await restoreInterruptedSwap(db);
    expect(await valueAt(db)).toBe('new');
    expect(existsSync(`${db}.replaced`)).toBe(false);

    // cut after both renames, before the old store was deleted
    mkdirSync(`${db}.replaced`);
    await restoreInterruptedSwap(db);
    expect(await valueAt(db)).toBe('new');
    expect(readdirSync(d).sort()).toEqual(['leveldb', 'snap']);
  });

  it('left over from a crash are all removed, complete, partial or half imported, and nothing else is', async () => {
    const snap = tmp();
    const leftovers = ['000000000000000a.snap.db', '000000000000000b.snap.db.part', '000000000000000c.snap.db.leveldb', '000000000000000c.snap.db.leveldb.import'];
    writeFileSync(path.join(snap, leftovers[0]!), 'bolt');
    writeFileSync(path.join(snap, leftovers[1]!), 'bo');
    for (const name of [...leftovers.slice(2), 'db']) mkdirSync(path.join(snap, name));
    writeFileSync(path.join(snap, '0000000000000002-000000000000000a.snap'), '');
    expect((await removeReceivedDbs(snap)).sort()).toEqual(leftovers.sort());
    expect(readdirSync(snap).sort()).toEqual(['0000000000000002-000000000000000a.snap', 'db']);
  });
});
