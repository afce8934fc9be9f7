// Compatibility with real etcd 3.4.23 (/usr/bin/etcd), both ways:
//  1. etcd-ts reads a data directory etcd wrote (WAL, snap files), and re-encoding
//     every record with etcd-ts's writer gives back etcd's file byte for byte.
//  2. etcd starts on a WAL and snap file etcd-ts wrote, recovers from that
//     snapshot, applies entries that exist only in etcd-ts's WAL, and appends to
//     it; etcd-ts then reads etcd's appends (the CRC chain runs across both).

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Entry,
  EntryType,
  decodeEntry,
  decodeHardState,
  encodeEntry,
  encodeHardState,
} from '../../src/raftpb/index.js';
import { readSegment } from '../../src/wal/decoder.js';
import { FrameEncoder } from '../../src/wal/frame.js';
import {
  Snapshotter,
  WAL,
  WalLockedError,
  nodeDisk,
  snapName,
  validSnapshotEntries,
  walName,
} from '../../src/wal/index.js';
import { RecordType, decodeWalSnapshot, encodeWalSnapshot } from '../../src/wal/walpb.js';
import { tempDir } from './helpers.js';
import { freePort } from '../../bench/free-port.js';

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => join('proto', target);
root.loadSync('etcdserverpb/raft_internal.proto');
const InternalRaftRequest = root.lookupType('etcdserverpb.InternalRaftRequest');
const Metadata = root.lookupType('etcdserverpb.Metadata');

interface Etcd {
  proc: ChildProcess;
  log: () => string;
  endpoint: string;
}

async function startEtcd(dataDir: string, clientPort: number, peerPort: number): Promise<Etcd> {
  const peer = `http://127.0.0.1:${peerPort}`;
  const client = `http://127.0.0.1:${clientPort}`;
  const proc = spawn(
    '/usr/bin/etcd',
    [
      '--name', 'n1',
      '--data-dir', dataDir,
      '--listen-client-urls', client,
      '--advertise-client-urls', client,
      '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `n1=${peer}`,
      '--snapshot-count', '10',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  proc.stdout!.on('data', (c: Buffer) => (log += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  const etcd = { proc, log: () => log, endpoint: `127.0.0.1:${clientPort}` };
  for (let i = 0; i < 200; i++) {
    if (proc.exitCode !== null) throw new Error(`etcd exited:\n${log}`);
    const ok = await fetch(`${client}/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return etcd;
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill('SIGKILL');
  throw new Error(`etcd did not become healthy:\n${log}`);
}

async function stopEtcd(e: Etcd): Promise<void> {
  if (e.proc.exitCode !== null) return;
  const exited = new Promise((r) => e.proc.once('exit', r));
  e.proc.kill('SIGTERM');
  await exited;
}

function etcdctl(e: Etcd, ...args: string[]): string {
  return execFileSync('/usr/bin/etcdctl', ['--endpoints', e.endpoint, ...args], {
    env: { ...process.env, ETCDCTL_API: '3' },
    encoding: 'utf8',
  });
}

/** Re-frames every record of a segment with etcd-ts's encoder (decoding and re-encoding raftpb payloads). */
async function reencode(path: string): Promise<{ original: Uint8Array; ours: Uint8Array; entries: Entry[] }> {
  const file = await nodeDisk.open(path, 'read');
  const enc = new FrameEncoder(0);
  const entries: Entry[] = [];
  const res = await readSegment(file, await file.size(), true, 0, (type, buf, start, end) => {
    const d = buf.slice(start, end);
    switch (type) {
      case RecordType.Crc:
        enc.appendCrc();
        break;
      case RecordType.Metadata:
        enc.append(type, d);
        break;
      case RecordType.Entry: {
        const e = decodeEntry(d);
        entries.push(e);
        enc.append(type, encodeEntry(e));
        break;
      }
      case RecordType.State:
        enc.append(type, encodeHardState(decodeHardState(d)));
        break;
      case RecordType.Snapshot:
        enc.append(type, encodeWalSnapshot(decodeWalSnapshot(d)));
        break;
    }
  });
  await file.close();
  expect(res.end.kind).toBe('clean');
  return { original: readFileSync(path).subarray(0, res.validEnd), ours: enc.bytes().slice(), entries };
}

/** The put in an entry holding a v3 InternalRaftRequest (etcd 3.4 also logs v2 requests, which carry no header). */
function putValue(e: Entry): { key: string; value: string } | undefined {
  if (e.type !== EntryType.Normal || e.data.length === 0) return undefined;
  let req: { header?: unknown; put?: { key: string; value: string } };
  try {
    req = InternalRaftRequest.toObject(InternalRaftRequest.decode(e.data), { bytes: String });
  } catch {
    return undefined;
  }
  if (!req.header || !req.put) return undefined;
  return { key: Buffer.from(req.put.key, 'base64').toString(), value: Buffer.from(req.put.value, 'base64').toString() };
}

describe('real etcd 3.4.23', () => {
  const tmp = tempDir('wal-etcd-');
  const etcdDir = join(tmp.dir, 'etcd-wrote');
  let clientPort = 0;
  let peerPort = 0;

  beforeAll(async () => {
    clientPort = await freePort();
    peerPort = await freePort();
    const etcd = await startEtcd(etcdDir, clientPort, peerPort);
    try {
      for (let i = 1; i <= 25; i++) etcdctl(etcd, 'put', `key${i}`, `value${i}`);
    } finally {
      await stopEtcd(etcd);
    }
  }, 60_000);

  afterAll(() => tmp.cleanup());

  it('etcd-ts reads the WAL and snapshots etcd wrote, and writes the same bytes', async () => {
    const walDir = join(etcdDir, 'member', 'wal');
    const snapDir = join(etcdDir, 'member', 'snap');
    // --snapshot-count 10: etcd cut snapshots, recorded in the WAL and as snap files
    const walSnaps = await validSnapshotEntries(walDir);
    expect(walSnaps.length).toBeGreaterThanOrEqual(3);
    const snap = await new Snapshotter(snapDir).loadNewestAvailable(async () => walSnaps);
    expect(snap).toBeDefined();
    expect(readdirSync(snapDir)).toContain(snapName(snap!.metadata.term, snap!.metadata.index));
    expect(snap!.metadata.confState.voters).toHaveLength(1);
    expect(JSON.parse(Buffer.from(snap!.data).toString())).toHaveProperty('Root'); // etcd's v2 store JSON

    const w = await WAL.open(walDir, { index: snap!.metadata.index, term: snap!.metadata.term });
    const { metadata, hardState, entries } = await w.readAll();
    await w.close();
    const meta = Metadata.toObject(Metadata.decode(metadata), { longs: String }) as { NodeID: string; ClusterID: string };
    expect(BigInt(meta.NodeID)).toBe(snap!.metadata.confState.voters[0]);
    expect(BigInt(meta.ClusterID)).not.toBe(0n);
    expect(hardState.vote).toBe(BigInt(meta.NodeID));
    expect(entries[0]!.index).toBe(snap!.metadata.index + 1);
    expect(hardState.commit).toBe(entries[entries.length - 1]!.index);
    expect(entries.map(putValue).filter((p) => p !== undefined).at(-1)).toEqual({ key: 'key25', value: 'value25' });

    // every put is in the log, in order
    const all = await reencode(join(walDir, walName(0, 0)));
    const puts = all.entries.map(putValue).filter((p) => p !== undefined);
    expect(puts).toEqual(Array.from({ length: 25 }, (_, i) => ({ key: `key${i + 1}`, value: `value${i + 1}` })));
    // byte for byte: framing, padding, rolling CRC, walpb and raftpb encodings
    expect(Buffer.from(all.ours).equals(Buffer.from(all.original))).toBe(true);
  });

  it('etcd starts on a WAL and snap file etcd-ts wrote, applies entries only they hold, and appends to the WAL', async () => {
    // what etcd left: its newest snapshot and the log after it
    const srcWal = join(etcdDir, 'member', 'wal');
    const snap = (await new Snapshotter(join(etcdDir, 'member', 'snap')).loadNewestAvailable(() => validSnapshotEntries(srcWal)))!;
    const src = await WAL.open(srcWal, { index: snap.metadata.index, term: snap.metadata.term });
    const { metadata, hardState, entries } = await src.readAll();
    await src.close();

    // a new data dir: etcd's backend db, everything else written by etcd-ts
    const ours = join(tmp.dir, 'etcd-ts-wrote');
    mkdirSync(join(ours, 'member', 'snap'), { recursive: true });
    copyFileSync(join(etcdDir, 'member', 'snap', 'db'), join(ours, 'member', 'snap', 'db'));
    await new Snapshotter(join(ours, 'member', 'snap')).save(snap);
    const last = entries[entries.length - 1]!;
    const extra: Entry[] = [1, 2].map((i) => ({
      term: last.term,
      index: last.index + i,
      type: EntryType.Normal,
      data: InternalRaftRequest.encode({
        header: { ID: 0x7e57_0000 + i },
        put: { key: Buffer.from(`from-etcd-ts-${i}`), value: Buffer.from(`written-by-etcd-ts-${i}`) },
      }).finish(),
    }));
    const walDir = join(ours, 'member', 'wal');
    const w = await WAL.create(walDir, metadata, { segmentSizeBytes: 1024 * 1024 });
    await w.saveSnapshot({ index: snap.metadata.index, term: snap.metadata.term });
    await w.save(undefined, entries, true);
    await w.save({ ...hardState, commit: last.index + 2 }, extra, true);
    await w.close();

    const etcd = await startEtcd(ours, clientPort, peerPort);
    try {
      // the db stops at the last entry etcd applied; these two exist only in our WAL
      expect(etcdctl(etcd, 'get', 'from-etcd-ts-1')).toBe('from-etcd-ts-1\nwritten-by-etcd-ts-1\n');
      expect(etcdctl(etcd, 'get', 'from-etcd-ts-2')).toBe('from-etcd-ts-2\nwritten-by-etcd-ts-2\n');
      expect(etcdctl(etcd, 'get', 'key25')).toBe('key25\nvalue25\n');
      etcdctl(etcd, 'put', 'after-restart', 'appended-by-etcd');
    } finally {
      await stopEtcd(etcd);
    }
    // etcd took our snap file: it logged the recovery and marked nothing broken
    expect(etcd.log()).toContain(`recovered store from snapshot at index ${snap.metadata.index}`);
    expect(readdirSync(join(ours, 'member', 'snap')).filter((n) => n.endsWith('.broken'))).toEqual([]);

    // and etcd-ts reads what etcd appended to etcd-ts's WAL
    const back = await WAL.open(walDir, { index: snap.metadata.index, term: snap.metadata.term });
    const after = await back.readAll();
    await back.close();
    const puts = after.entries.map(putValue).filter((p) => p !== undefined);
    expect(puts.slice(-3)).toEqual([
      { key: 'from-etcd-ts-1', value: 'written-by-etcd-ts-1' },
      { key: 'from-etcd-ts-2', value: 'written-by-etcd-ts-2' },
      { key: 'after-restart', value: 'appended-by-etcd' },
    ]);
    const again = await reencode(join(walDir, walName(0, 0)));
    expect(Buffer.from(again.ours).equals(Buffer.from(again.original))).toBe(true);
  }, 60_000);

  it('etcd-ts refuses a WAL directory a running etcd holds, naming the etcd process', async () => {
    const etcd = await startEtcd(etcdDir, clientPort, peerPort);
    try {
      const err = await WAL.open(join(etcdDir, 'member', 'wal'), { index: 0, term: 0 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WalLockedError);
      expect((err as Error).message).toContain(`pid ${etcd.proc.pid}`);
      expect((err as Error).message).toContain('holds a file lock');
    } finally {
      await stopEtcd(etcd);
    }
    // and the refusal left no lock file behind
    expect(readdirSync(join(etcdDir, 'member', 'wal')).filter((n) => n.includes('lock'))).toEqual([]);
  }, 60_000);
});
