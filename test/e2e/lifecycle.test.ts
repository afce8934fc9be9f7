// A member's life: restart with everything kept, kill -9 under a write load without
// losing an acknowledged write, and clear refusals of bad input.

import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { EtcdClient } from './client.js';
import { cleanup, command, ctl, etcdctl, freePort, startMember, stopMember, tempDir, waitFor, killProcesses } from './harness.js';
import { spawnSync } from 'node:child_process';

afterAll(cleanup);
// each case starts its own members: none outlives its case
afterEach(killProcesses);

function statusOf(out: string) {
  return (JSON.parse(out) as Array<{ Status: { header: { member_id: number; cluster_id: number; revision: number } } }>)[0]!
    .Status.header;
}

describe('restart', () => {
  it('keeps keys, revision, leases, compaction and the member ID', async () => {
    const clientPort = await freePort();
    const peerPort = await freePort();
    const dataDir = path.join(tempDir(), 'r.etcd');
    const first = await startMember({ name: 'r', dataDir, clientPort, peerPort });
    const ep = first.clientUrl;
    await ctl(ep, ['put', 'keep/a', '1']);
    await ctl(ep, ['put', 'keep/a', '2']);
    await ctl(ep, ['put', 'keep/b', '3']);
    const lease = /lease ([0-9a-f]+) granted/.exec(await ctl(ep, ['lease', 'grant', '600']))![1]!;
    await ctl(ep, ['put', 'keep/leased', 'x', '--lease', lease]);
    const compactAt = statusOf(await ctl(ep, ['endpoint', 'status', '-w', 'json'])).revision - 1;
    await ctl(ep, ['compaction', String(compactAt)]);
    const before = statusOf(await ctl(ep, ['endpoint', 'status', '-w', 'json']));
    await new Promise((r) => setTimeout(r, 20_000)); // let the lease's clock run
    const leftBefore = Number(/remaining\((\d+)s\)/.exec(await ctl(ep, ['lease', 'timetolive', lease]))![1]);
    // a clean stop: etcd re-raises SIGTERM after cleanup, etcd-ts exits 0
    expect([0, 'SIGTERM']).toContain(await stopMember(first));

    const second = await startMember({ name: 'r', dataDir, clientPort, peerPort });
    // the clean stop saved the key index; this start read it rather than every record
    expect(second.output()).toMatch(/"restored-from":"image"/);
    const after = statusOf(await ctl(ep, ['endpoint', 'status', '-w', 'json']));
    expect(after.member_id).toBe(before.member_id);
    expect(after.cluster_id).toBe(before.cluster_id);
    expect(after.revision).toBe(before.revision);
    expect(await ctl(ep, ['get', 'keep/', '--prefix'])).toBe('keep/a\n2\nkeep/b\n3\nkeep/leased\nx\n');
    expect(await ctl(ep, ['lease', 'list'])).toContain(lease);
    const ttl = await ctl(ep, ['lease', 'timetolive', lease, '--keys']);
    expect(ttl).toContain('attached keys([keep/leased])');
    // without persisted checkpoints (etcd 3.4's default) the restarted leader gives the
    // lease its whole 600 s again: more than was left 20 s into it, however slow the restart
    expect(leftBefore).toBeLessThanOrEqual(580);
    expect(Number(/remaining\((\d+)s\)/.exec(ttl)![1])).toBeGreaterThan(leftBefore + 5);
    const old = await etcdctl(ep, ['get', 'keep/a', '--rev', String(compactAt - 1)]);
    expect(old.stderr).toContain('required revision has been compacted');
    await ctl(ep, ['put', 'keep/c', '4']);
    expect(statusOf(await ctl(ep, ['endpoint', 'status', '-w', 'json'])).revision).toBe(before.revision + 1);
    await stopMember(second);
  });
});

describe('a stop cut short', () => {
  it("by a SIGKILL while it writes etcd's bbolt db (a container runtime's stop timeout): the next start still takes the key index saved before it", async () => {
    const clientPort = await freePort();
    const peerPort = await freePort();
    const dataDir = path.join(tempDir(), 'k.etcd');
    const first = await startMember({ name: 'k', dataDir, clientPort, peerPort });
    // 32 MB in 64 txns: an export that takes a good fraction of a second, far longer
    // than this process takes to see the log line and send the SIGKILL
    const client = new EtcdClient(first.clientUrl);
    for (let t = 0; t < 64; t++) {
      const success = Array.from({ length: 128 }, (_, i) => ({ request_put: { key: Buffer.from(`cut/${String(t * 128 + i).padStart(5, '0')}`), value: randomBytes(4096) } }));
      await client.call(client.kv, 'Txn', { compare: [], success, failure: [] });
    }
    client.close();
    const before = statusOf(await ctl(first.clientUrl, ['endpoint', 'status', '-w', 'json']));
    // killed the moment the export begins, as a stop timeout would kill it part way
    const exporting = "writing etcd's bbolt db before stopping";
    const killAtExport = () => {
      if (first.output().includes(exporting)) first.proc.kill('SIGKILL');
    };
    // (the harness's own listeners, added first, have the chunk in output() already)
    for (const s of [first.proc.stdout!, first.proc.stderr!]) s.on('data', killAtExport);
    first.proc.kill('SIGTERM');
    expect(await first.exited).toBe('SIGKILL');
    const stopping = first.output().split(exporting);
    expect(stopping).toHaveLength(2);
    // the kill came before the export was done: what the case is about
    expect(stopping[1]).not.toContain("wrote etcd's bbolt db");

    const second = await startMember({ name: 'k', dataDir, clientPort, peerPort });
    expect(second.output()).toMatch(/"restored-from":"image"/);
    const after = statusOf(await ctl(second.clientUrl, ['endpoint', 'status', '-w', 'json']));
    expect(after.revision).toBe(before.revision);
    expect(await ctl(second.clientUrl, ['get', 'cut/', '--prefix', '--limit', '1', '-w', 'json'])).toMatch(/"count":8192/);
    await ctl(second.clientUrl, ['put', 'cut/after', 'x']);
    await stopMember(second);
  });
});

describe('snapshots', () => {
  it('takes one every --snapshot-count entries, keeps --max-snapshots files, and restarts from them', async () => {
    const clientPort = await freePort();
    const peerPort = await freePort();
    const dataDir = path.join(tempDir(), 's.etcd');
    const args = ['--snapshot-count', '20', '--max-snapshots', '2'];
    const first = await startMember({ name: 's', dataDir, clientPort, peerPort, args });
    // through one gRPC client, not 120 etcdctl runs (a Go process start each, ~0.04 CPU s):
    // what is tested is the snapshots the entries lead to
    const client = new EtcdClient(first.clientUrl);
    for (let i = 0; i < 120; i++) await client.put(`snap/${i}`, `v${i}`);
    client.close();
    const snapDir = path.join(dataDir, 'member', 'snap');
    const snaps = () => readdirSync(snapDir).filter((f) => f.endsWith('.snap'));
    await eventuallyTrue(() => snaps().length === 2);
    expect(first.output()).toContain('triggering snapshot');
    expect([0, 'SIGTERM']).toContain(await stopMember(first));
    const second = await startMember({ name: 's', dataDir, clientPort, peerPort, args });
    expect(await ctl(second.clientUrl, ['get', 'snap/119', '--print-value-only'])).toBe('v119\n');
    expect(await ctl(second.clientUrl, ['get', 'snap/', '--prefix', '--limit', '1', '-w', 'json'])).toMatch(/"count":120/);
    await stopMember(second);
  });
});

async function eventuallyTrue(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('kill -9 under a write load', () => {
  it('loses no acknowledged write', async () => {
    const clientPort = await freePort();
    const peerPort = await freePort();
    const dataDir = path.join(tempDir(), 'k.etcd');
    let member = await startMember({ name: 'k', dataDir, clientPort, peerPort });
    const acked = new Map<string, string>();
    for (let round = 0; round < 3; round++) {
      const client = new EtcdClient(member.clientUrl);
      let stop = false;
      const roundStart = acked.size;
      const workers = Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; !stop; i++) {
          const key = `acked/${round}/${w}/${i}`;
          try {
            await client.put(key, `v${i}`);
            acked.set(key, `v${i}`);
          } catch {
            return; // the member died under us
          }
        }
      });
      // kill at a different point of each round's load, but only once it has acknowledged some
      const wanted = roundStart + 10 + round * 15;
      const deadline = Date.now() + 60_000;
      while (acked.size < wanted) {
        if (Date.now() > deadline) throw new Error(`round ${round}: only ${acked.size - roundStart} writes acknowledged`);
        await new Promise((r) => setTimeout(r, 20));
      }
      member.proc.kill('SIGKILL');
      await member.exited;
      stop = true;
      await Promise.all(workers);
      client.close();
      member = await startMember({ name: 'k', dataDir, clientPort, peerPort });
    }
    const client = new EtcdClient(member.clientUrl);
    const missing: string[] = [];
    for (const [k, v] of acked) if ((await client.get(k)) !== v) missing.push(k);
    client.close();
    expect(missing).toEqual([]);
    await stopMember(member);
  });

  it('with --unsafe-no-fsync the WAL is not synced, and a process crash still keeps what the kernel was given', async () => {
    const clientPort = await freePort();
    const peerPort = await freePort();
    const dataDir = path.join(tempDir(), 'u.etcd');
    const opts = { name: 'u', dataDir, clientPort, peerPort, args: ['--unsafe-no-fsync'] };
    let member = await startMember(opts);
    expect(member.output()).toContain('--unsafe-no-fsync: the WAL is never fsynced');
    const fsyncs = async () => {
      const text = await fetch(`${member.clientUrl}/metrics`).then((r) => r.text());
      return Number(/^etcd_disk_wal_fsync_duration_seconds_count (\S+)$/m.exec(text)![1]);
    };
    const before = await fsyncs();
    const client = new EtcdClient(member.clientUrl);
    for (let i = 0; i < 20; i++) await client.put(`unsynced/${i}`, `v${i}`);
    client.close();
    // etcd counts no fsync it did not make: the creation's sync, then none per put
    expect(await fsyncs()).toBe(before);
    member.proc.kill('SIGKILL');
    await member.exited;
    member = await startMember(opts);
    expect(await ctl(member.clientUrl, ['get', 'unsynced/', '--prefix', '--keys-only', '-w', 'json']).then((o) => (JSON.parse(o) as { count: number }).count)).toBe(20);
    await stopMember(member);
  });
});

describe('bad input', () => {
  it('refuses an unknown flag with exit code 2', () => {
    const { cmd, argv } = command(['--bogus-flag']);
    const r = spawnSync(cmd, argv, { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('flag provided but not defined: -bogus-flag');
  });

  it('fails clearly when the client port is taken', async () => {
    const port = await freePort();
    const squatter = net.createServer().listen(port, '127.0.0.1');
    await new Promise((r) => squatter.once('listening', r));
    try {
      const m = await startMember({ clientPort: port, waitReady: false });
      const code = await m.exited;
      expect(code).not.toBe(0);
      expect(m.output()).toMatch(/address already in use/);
      expect(m.output()).toContain(`127.0.0.1:${port}`);
    } finally {
      squatter.close();
    }
  });

  it('fails clearly when the data dir cannot be created', async () => {
    const file = path.join(tempDir(), 'not-a-dir');
    writeFileSync(file, '');
    const m = await startMember({ dataDir: path.join(file, 'data'), waitReady: false });
    expect(await m.exited).not.toBe(0);
    expect(m.output()).toContain(path.join(file, 'data'));
  });

  it('starts a data dir under a new --name, as etcd does, and publishes the new name', async () => {
    // The disk-full recovery guide copies a stopped member's data dir and starts it under
    // another name: etcd keys a member on the ID in its WAL, not on its name.
    const dataDir = path.join(tempDir(), 'owner.etcd');
    const owner = await startMember({ name: 'owner', dataDir });
    await ctl(owner.clientUrl, ['put', 'k', 'kept']);
    const id = statusOf(await ctl(owner.clientUrl, ['endpoint', 'status', '-w', 'json'])).member_id;
    await stopMember(owner);
    const renamed = await startMember({ name: 'renamed', dataDir });
    expect(statusOf(await ctl(renamed.clientUrl, ['endpoint', 'status', '-w', 'json'])).member_id).toBe(id);
    expect(await ctl(renamed.clientUrl, ['get', 'k', '--print-value-only'])).toBe('kept\n');
    expect(await ctl(renamed.clientUrl, ['member', 'list'])).toContain(', started, renamed, ');
    await stopMember(renamed);
  });

  it('refuses an --initial-cluster that lists one peer URL twice, with etcd\'s message and exit code', async () => {
    const peer = `http://127.0.0.1:${await freePort()}`;
    const m = await startMember({ name: 'a', waitReady: false, args: ['--initial-cluster', `a=${peer},b=${peer}`, '--initial-advertise-peer-urls', peer, '--listen-peer-urls', peer] });
    expect(await m.exited).toBe(1);
    expect(m.output()).toContain(`initial cluster a=${peer},b=${peer} has duplicate url`);
  });

  it('survives garbage on the client port', async () => {
    const m = await startMember({ name: 'g' });
    const port = Number(new URL(m.clientUrl).port);
    for (const payload of [Buffer.from('GARBAGE\r\n\r\n'), Buffer.alloc(4096, 0xff), Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04')]) {
      await new Promise<void>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => s.end(payload));
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        s.resume();
      });
    }
    expect(await ctl(m.clientUrl, ['put', 'after-garbage', 'ok'])).toBe('OK\n');
    await waitFor(m, 'ready to serve client requests');
    await stopMember(m);
  });
});

describe('--log-package-levels', () => {
  it("quiets the packages it names, as etcd's capnslog logger: each line goes with the package etcd writes it from", async () => {
    const quiet = await startMember({ args: ['--log-package-levels', 'etcdserver=WARNING,raft=WARNING'] });
    // etcdserver's info lines go; embed's and etcdserver/api's stay, and raft's (its own
    // logger in etcd 3.4, which the setting does not reach), as with etcd 3.4.23
    expect(quiet.output()).not.toContain('published');
    expect(quiet.output()).toContain('ready to serve client requests');
    expect(quiet.output()).toMatch(/became leader at term \d+/);
    await waitFor(quiet, 'enabled capabilities for version');
    await stopMember(quiet);
    const plain = await startMember();
    expect(plain.output()).toContain('published');
    await stopMember(plain);
  });
});

describe('configuration mistakes, worded as etcd words them', () => {
  it('--name missing from --initial-cluster, and advertised peer URLs that differ from it', async () => {
    const peer = `http://127.0.0.1:${await freePort()}`;
    const other = `http://127.0.0.1:${await freePort()}`;
    const noName = await startMember({ name: 'x', waitReady: false, args: ['--initial-cluster', `a=${peer}`] });
    expect(await noName.exited).toBe(1);
    // etcd-ts logs JSON (quotes escaped), etcd plain text
    expect(noName.output()).toMatch(/couldn't find local name \\?"x\\?" in the initial cluster configuration/);
    const mismatch = await startMember({ name: 'a', waitReady: false, args: ['--initial-cluster', `a=${peer}`, '--initial-advertise-peer-urls', other] });
    expect(await mismatch.exited).toBe(1);
    expect(mismatch.output()).toContain(`--initial-cluster has a=${peer} but missing from --initial-advertise-peer-urls=${other}`);
  });
});
