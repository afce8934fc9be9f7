// `etcdctl snapshot save` from etcd-ts writes etcd 3.4's bbolt backend: the same
// operations on real etcd 3.4.23 and on etcd-ts save files whose buckets are equal
// record for record (so `snapshot status` gives the same hash); stock etcdctl restores
// the etcd-ts backup, and real etcd (one member, or three as the disaster-recovery guide
// does it) and etcd-ts start on it and serve what the etcd-ts member served.

import { once } from 'node:events';
import { readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BoltFile } from '../../src/bbolt/index.js';
import { boltCheck } from '../bbolt/real-bolt.js';
import { applyWorkload } from '../bbolt/workload.js';
import { restoreMember, served, type Served } from './backup-harness.js';
import { EtcdClient } from './client.js';
import { frame } from './raw-grpc.js';
import { clientUrl, eventually, planCluster, startSlot } from './cluster-harness.js';
import { startEtcd } from '../../src/index.js';
import { cleanup, ctl, etcdctl, freePort, inProcessConfig, type Member, startMember, stopMember, tempDir, killProcesses } from './harness.js';

afterAll(cleanup);
// each case starts its own members: none outlives its case
afterEach(killProcesses);

/**
 * The bbolt workload and a role. No user: a password's bcrypt salt is random, and
 * etcd-ts's auth store encodes a no-password user's empty password and a READ
 * permission's zero type, which etcd's gogoproto leaves out (users, passwords and READ
 * are checked against real etcd by the auth test below).
 */
async function history(ep: string): Promise<void> {
  await applyWorkload(ep, { keys: 2000, bigValues: 3 });
  await ctl(ep, ['role', 'add', 'rw']);
  await ctl(ep, ['role', 'grant-permission', 'rw', 'readwrite', 'k/', '--prefix=true']);
}

async function save(ep: string, auth: string[] = []): Promise<string> {
  const file = path.join(tempDir(), 'backup.db');
  expect(await ctl(ep, [...auth, 'snapshot', 'save', file])).toBe(`Snapshot saved at ${file}\n`);
  return file;
}

interface Status {
  hash: number;
  revision: number;
  totalKey: number;
  totalSize: number;
}

async function status(file: string): Promise<Status> {
  return JSON.parse(await ctl('127.0.0.1:1', ['snapshot', 'status', file, '-w', 'json'])) as Status;
}

/** Every bucket's records, as etcd-ts's bbolt reader sees them (values hex, long ones by length and head). */
async function buckets(file: string): Promise<Record<string, string[]>> {
  const f = await BoltFile.open(file);
  try {
    const out: Record<string, string[]> = {};
    for (const name of f.bucketNames()) {
      const records: string[] = [];
      for await (const [k, v] of f.entries(name)) records.push(`${k.toString('hex')} ${v.length > 256 ? `${v.length}:${v.subarray(0, 64).toString('hex')}` : v.toString('hex')}`);
      out[name.toString()] = records;
    }
    return out;
  } finally {
    await f.close();
  }
}

function memberIds(ep: string): Promise<string> {
  return ctl(ep, ['member', 'list']).then((out) => out.split('\n').map((l) => l.split(',').slice(0, 4).join(',')).sort().join('\n'));
}

describe('etcdctl snapshot save from etcd-ts', () => {
  let backup: string;
  let reference: Served;

  it('holds what real etcd 3.4.23 saves after the same operations: every bucket equal, snapshot status equal', async () => {
    // same name and URLs, so the same member and cluster IDs, one after the other
    const ports = { clientPort: await freePort(), peerPort: await freePort() };
    const files: Record<string, string> = {};
    for (const binary of ['etcd', 'etcd-ts'] as const) {
      const m = await startMember({ name: 'saved', binary, ...ports });
      await history(m.clientUrl);
      files[binary] = await save(m.clientUrl);
      // after the save: etcd 3.4 sends user and role reads through raft, and records the
      // consistent index only with a write, etcd-ts with every entry it applies
      if (binary === 'etcd-ts') reference = await served(m.clientUrl);
      await stopMember(m);
    }
    backup = files['etcd-ts']!;
    const [oursBuckets, etcdBuckets] = [await buckets(backup), await buckets(files.etcd!)];
    // neither checkpoints lease TTLs by default, so even the lease records are byte-equal
    expect(oursBuckets).toEqual(etcdBuckets);
    const [ours, etcd] = [await status(backup), await status(files.etcd!)];
    expect({ ...ours, totalSize: 0 }).toEqual({ ...etcd, totalSize: 0 });
    expect(ours.revision).toBe(reference.hashkv.revision);
    // the file is the database and the SHA-256 etcdctl checked
    expect(statSync(backup).size).toBe(ours.totalSize + 32);
    console.log(`snapshot save, same data: etcd-ts ${ours.totalSize} bytes, etcd ${etcd.totalSize} bytes (${(ours.totalSize / etcd.totalSize).toFixed(3)}x)`);
  }, 180_000);

  it('sent while the store is read (no record above a quarter page): the same buckets and status as real etcd, and bbolt checks it clean', async () => {
    const ports = { clientPort: await freePort(), peerPort: await freePort() };
    const files: Record<string, string> = {};
    for (const binary of ['etcd', 'etcd-ts'] as const) {
      const m = await startMember({ name: 'streamed', binary, ...ports });
      await applyWorkload(m.clientUrl, { keys: 3000, bigValues: 0 });
      files[binary] = await save(m.clientUrl);
      if (binary === 'etcd-ts') expect(m.output()).toContain('"sent-while-read":true');
      await stopMember(m);
    }
    expect(await buckets(files['etcd-ts']!)).toEqual(await buckets(files.etcd!));
    const [ours, etcd] = [await status(files['etcd-ts']!), await status(files.etcd!)];
    expect({ ...ours, totalSize: 0 }).toEqual({ ...etcd, totalSize: 0 });
    expect(statSync(files['etcd-ts']!).size).toBe(ours.totalSize + 32);
    const check = await boltCheck(files['etcd-ts']!);
    expect(check.output).toBe('');
  }, 180_000);

  it('restored by etcdctl, real etcd 3.4.23 starts on it and serves what etcd-ts served', async () => {
    const plan = await planCluster(1, 'dr');
    await restoreMember(backup, plan, 0);
    const m = await startSlot(plan, plan.slots[0]!, { binary: 'etcd' });
    expect(await served(m.clientUrl)).toEqual(reference);
    expect(await ctl(m.clientUrl, ['member', 'list'])).toContain(`, started, dr1, http://127.0.0.1:${plan.slots[0]!.peerPort}, ${m.clientUrl}, false`);
    await ctl(m.clientUrl, ['put', 'k/after', 'restore']);
    await stopMember(m);
  }, 120_000);

  it('restored on three members as the disaster-recovery guide does it, real etcd 3.4.23 serves it on each', async () => {
    const plan = await planCluster(3, 'dr');
    for (let i = 0; i < 3; i++) await restoreMember(backup, plan, i);
    const members = await Promise.all(plan.slots.map((s) => startSlot(plan, s, { binary: 'etcd' })));
    for (const s of plan.slots) expect(await served(clientUrl(s))).toEqual(reference);
    await ctl(clientUrl(plan.slots[2]!), ['put', 'k/new', 'replicated']);
    for (const s of plan.slots) {
      await eventually(async () => expect(await ctl(clientUrl(s), ['get', 'k/new', '--print-value-only', '--consistency=s'])).toBe('replicated\n'));
    }
    await Promise.all(members.map((m) => stopMember(m)));
  }, 180_000);

  it('restored by etcdctl, etcd-ts starts on it and serves the same (the round trip)', async () => {
    const plan = await planCluster(3, 'rt');
    for (let i = 0; i < 3; i++) await restoreMember(backup, plan, i);
    const members = await Promise.all(plan.slots.map((s) => startSlot(plan, s)));
    for (const s of plan.slots) expect(await served(clientUrl(s))).toEqual(reference);
    const ids = await memberIds(clientUrl(plan.slots[0]!));
    for (const s of plan.slots) expect(ids).toContain(`, started, ${s.name}`);
    await Promise.all(members.map((m) => stopMember(m)));
  }, 180_000);
});

describe('etcdctl snapshot save with auth on', () => {
  it('only root saves; real etcd restored from the backup knows the users, their passwords and roles', async () => {
    const root = ['--user', 'root:rootpw'];
    const alice = ['--user', 'alice:alicepw'];
    const m = await startMember({ name: 'authsaved' });
    const ep = m.clientUrl;
    await ctl(ep, ['user', 'add', 'root:rootpw']);
    await ctl(ep, ['user', 'add', 'alice:alicepw']);
    await ctl(ep, ['role', 'add', 'reader']);
    await ctl(ep, ['role', 'grant-permission', 'reader', 'read', 'k/', '--prefix=true']);
    await ctl(ep, ['user', 'grant-role', 'alice', 'reader']);
    await ctl(ep, ['put', 'k/1', 'one']);
    await ctl(ep, ['auth', 'enable']);
    const denied = await etcdctl(ep, [...alice, 'snapshot', 'save', path.join(tempDir(), 'alice.db')]);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('auth: permission denied');
    const reference = await served(ep, root);
    const file = await save(ep, root);
    await stopMember(m);

    const plan = await planCluster(1, 'authdr');
    await restoreMember(file, plan, 0);
    const etcd = await startSlot(plan, plan.slots[0]!, { binary: 'etcd' });
    expect(await served(etcd.clientUrl, root)).toEqual(reference);
    // etcd-ts's bcrypt hashes check out in Go's bcrypt, and the role still binds alice
    expect(await ctl(etcd.clientUrl, [...alice, 'get', 'k/1', '--print-value-only'])).toBe('one\n');
    const write = await etcdctl(etcd.clientUrl, [...alice, 'put', 'k/2', 'two']);
    expect(write.stderr).toContain('etcdserver: permission denied');
    const wrong = await etcdctl(etcd.clientUrl, ['--user', 'alice:wrong', 'get', 'k/1']);
    expect(wrong.stderr).toContain('authentication failed, invalid user ID or password');
    await stopMember(etcd);
  }, 120_000);
});

/** Files in the snap dir and descriptors of the member that belong to a backup on its way. */
function backupLeftovers(m: Member): string[] {
  const snapDir = path.join(m.dataDir, 'member', 'snap');
  const files = readdirSync(snapDir).filter((n) => n.startsWith('db.tmp'));
  const fdDir = `/proc/${m.proc.pid}/fd`;
  const fds = readdirSync(fdDir)
    .map((fd) => {
      try {
        return readlinkSync(path.join(fdDir, fd));
      } catch {
        return ''; // closed while we listed them
      }
    })
    .filter((target) => target.includes('db.tmp'));
  return [...files, ...fds];
}

describe('a client that cancels a snapshot', () => {
  it('leaves no temporary file and no open handle behind, and the next save works', async () => {
    const m = await startMember({ name: 'cancelled' });
    const c = new EtcdClient(m.clientUrl);
    try {
      const value = Buffer.alloc(64 * 1024, 'v');
      for (let i = 0; i < 64; i++) await c.call(c.kv, 'Put', { key: Buffer.from(`big/${i}`), value });
    } finally {
      c.close();
    }
    // a client that takes the first chunk, then reads no more: the member waits for it
    const session = http2.connect(m.clientUrl);
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/etcdserverpb.Maintenance/Snapshot', 'content-type': 'application/grpc', te: 'trailers' });
      stream.end(frame(Buffer.alloc(0)));
      await once(stream, 'data');
      stream.pause();
      // the backup is open (unlinked already) while the member waits for the client
      expect(backupLeftovers(m)).toEqual([expect.stringMatching(/db\.tmp\.snapshot-[0-9a-f]+ \(deleted\)$/)]);
      stream.close(http2.constants.NGHTTP2_CANCEL);
      await eventually(async () => expect(backupLeftovers(m)).toEqual([]));
    } finally {
      session.destroy();
    }
    const file = await save(m.clientUrl);
    expect((await status(file)).totalKey).toBeGreaterThan(64);
    expect(backupLeftovers(m)).toEqual([]);
    await stopMember(m);
  }, 120_000);
});

/** The blobs of a Snapshot response stream (gRPC messages of SnapshotResponse), the checksum message included. */
function snapshotBlobs(data: Buffer): Buffer[] {
  const blobs: Buffer[] = [];
  for (let at = 0; at < data.length; ) {
    const len = data.readUInt32BE(at + 1);
    const msg = data.subarray(at + 5, at + 5 + len);
    at += 5 + len;
    for (let i = 0; i < msg.length; ) {
      const key = msg[i++]!;
      let n = 0;
      for (let shift = 0; ; shift += 7) {
        const b = msg[i++]!;
        n += (b & 0x7f) * 2 ** shift;
        if (b < 0x80) break;
      }
      if (key === 0x1a) {
        blobs.push(msg.subarray(i, i + n));
        i += n;
      }
    }
  }
  return blobs;
}

describe('a snapshot sent while the store is read', () => {
  it('writes no file; puts made while the client holds the stream back are not in it; a cancel mid-way leaves the next save whole', async () => {
    const m = await startMember({ name: 'streamed' });
    const c = new EtcdClient(m.clientUrl);
    let revision: number;
    try {
      // some 6 MB of 256-byte values: far more than the client's window
      for (let t = 0; t < 200; t++) {
        const success = Array.from({ length: 100 }, (_, i) => ({ request_put: { key: Buffer.from(`s/${t * 100 + i}`), value: Buffer.alloc(256, t) } }));
        await c.call(c.kv, 'Txn', { compare: [], success, failure: [] });
      }
      const r = await c.call<{ header: { revision: string } }>(c.kv, 'Range', { key: Buffer.from('s/0') });
      revision = Number(r.header.revision);
    } finally {
      c.close();
    }
    let streamed: Status;
    const session = http2.connect(m.clientUrl);
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/etcdserverpb.Maintenance/Snapshot', 'content-type': 'application/grpc', te: 'trailers' });
      stream.end(frame(Buffer.alloc(0)));
      const chunks: Buffer[] = [(await once(stream, 'data'))[0] as Buffer];
      stream.pause();
      // the member is part way through the store, waiting for the client: no file on disk
      expect(backupLeftovers(m)).toEqual([]);
      const c2 = new EtcdClient(m.clientUrl);
      try {
        await c2.call(c2.kv, 'Put', { key: Buffer.from('s/0'), value: Buffer.from('after') });
        await c2.call(c2.kv, 'Put', { key: Buffer.from('s/new'), value: Buffer.from('after') });
      } finally {
        c2.close();
      }
      stream.on('data', (d: Buffer) => chunks.push(d));
      stream.resume();
      await once(stream, 'end');
      const blobs = snapshotBlobs(Buffer.concat(chunks));
      const file = path.join(tempDir(), 'streamed.db');
      writeFileSync(file, Buffer.concat(blobs));
      streamed = await status(file);
      expect(streamed.revision).toBe(revision);
      expect((await boltCheck(file)).output).toBe('');
    } finally {
      session.destroy();
    }
    // a client that goes away part way: the member stops reading, and the next save is whole
    const s2 = http2.connect(m.clientUrl);
    try {
      const stream = s2.request({ ':method': 'POST', ':path': '/etcdserverpb.Maintenance/Snapshot', 'content-type': 'application/grpc', te: 'trailers' });
      stream.end(frame(Buffer.alloc(0)));
      await once(stream, 'data');
      stream.close(http2.constants.NGHTTP2_CANCEL);
    } finally {
      s2.destroy();
    }
    const file = await save(m.clientUrl);
    const after = await status(file);
    // the two puts made while the first stream was held back: two more revision records
    expect(after.revision).toBe(revision + 2);
    expect(after.totalKey).toBe(streamed.totalKey + 2);
    expect(backupLeftovers(m)).toEqual([]);
    await stopMember(m);
  }, 300_000);
});

describe('the thread a save is read in', () => {
  it("starts under Node's process-wide flags (bin/etcd-ts's own, and `--max-old-space-size=...` added), which a worker refuses when they are passed to it", async () => {
    const m = await startMember({ name: 'node-flags', nodeFlags: ['--max-old-space-size=2048'] });
    await ctl(m.clientUrl, ['put', 'k', 'v']);
    expect((await status(await save(m.clientUrl))).revision).toBe(2);
    // read and sent by the export thread, not written to a file by the member's thread
    expect(m.output()).toContain('"sent-while-read":true');
    expect(m.output()).not.toContain('could not start the export thread');
    await stopMember(m);
  }, 60_000);

  it("when none starts, the member's thread writes the backup and the save is whole", async () => {
    const etcd = await startEtcd(await inProcessConfig('no-thread'));
    try {
      await etcd.ready;
      const url = etcd.clientUrls[0]!;
      await ctl(url, ['put', 'k', 'v']);
      // fault injection: the store refuses the thread's registration, as a thread that cannot open it would fail
      const store = etcd.server.store;
      store.addReader = () => {
        throw new Error('injected: no export thread');
      };
      const file = await save(url);
      expect((await status(file)).revision).toBe(2);
      expect((await boltCheck(file)).output).toBe('');
    } finally {
      await etcd.close();
    }
  }, 60_000);
});
