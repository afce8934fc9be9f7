// A first start that dies part way (kill -9, a power cut) must leave a data dir the next
// start continues from: the member bootstraps, bootstraps again, or restarts, and then
// joins and serves, with nobody wiping anything by hand. bin/etcd-ts's ETCDTS_TEST_KILL_AT
// makes the member SIGKILL itself right after each durable step of its start
// (src/server/start-steps.ts); a power cut that tears raft's first Ready is modelled by
// zeroing the sectors of it that did not reach the disk.

import { closeSync, existsSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { emptyHardState } from '../../src/raftpb/index.js';
import { START_STEPS, type StartStep } from '../../src/server/start-steps.js';
import { MemDisk, WAL, type WalContents, walName } from '../../src/wal/index.js';
import { type ClusterPlan, type Slot, clientUrl, eventually, flagsFor, planCluster, startSlot } from './cluster-harness.js';
import { type Member, cleanup, ctl, freePort, startMember, stopMember, tempDir, killProcesses } from './harness.js';

afterAll(cleanup);
// each case starts its own members: none outlives its case
afterEach(killProcesses);

const killAt = (step: StartStep): Record<string, string> => ({ ETCDTS_TEST_KILL_AT: step });

/** What the next start says it does with the data dir the killed one left. */
const NEXT_START: Record<StartStep, string> = {
  'data-dir-created': 'starting member',
  'store-opened': 'starting member',
  'wal-created': 'bootstrapping the member again',
  'first-ready-persisted': 'restarting local member',
  published: 'restarting local member',
};

async function expectKilledAfter(m: Member, step: StartStep): Promise<void> {
  expect(await m.exited).toBe('SIGKILL');
  expect(m.output()).toContain(`killing the member after start step ${step}`);
}

/** Writes through `writer`, then reads the value back from every member with a linearizable get. */
async function expectServes(writer: string, all: string[], names: string[]): Promise<void> {
  await ctl(writer, ['put', 'after-crashed-start', writer]);
  for (const url of all) {
    expect(await ctl(url, ['get', 'after-crashed-start', '--print-value-only', '--consistency=l'])).toBe(`${writer}\n`);
  }
  const list = await ctl(all[0]!, ['member', 'list']);
  for (const name of names) expect(list).toContain(`, started, ${name}, `);
}

describe('a first start killed right after each of its durable steps', () => {
  it('refuses an ETCDTS_TEST_KILL_AT that names no step, before touching the data dir', async () => {
    const dataDir = path.join(tempDir(), 'typo.etcd');
    const m = await startMember({ name: 'typo', dataDir, binary: 'etcd-ts', env: { ETCDTS_TEST_KILL_AT: 'wal-create' }, waitReady: false });
    expect(await m.exited).toBe(1);
    expect(m.output()).toContain(`ETCDTS_TEST_KILL_AT="wal-create" is not a start step (one of ${START_STEPS.join(', ')})`);
    expect(existsSync(dataDir)).toBe(false);
  });

  it.each(START_STEPS)('one member killed after %s: the next start continues and serves', async (step) => {
    const opts = { name: 'one', dataDir: path.join(tempDir(), 'one.etcd'), clientPort: await freePort(), peerPort: await freePort(), binary: 'etcd-ts' as const };
    await expectKilledAfter(await startMember({ ...opts, env: killAt(step), waitReady: false }), step);

    const m = await startMember(opts);
    expect(m.output()).toContain(NEXT_START[step]);
    await expectServes(m.clientUrl, [m.clientUrl], ['one']);
    await stopMember(m);
  });

  it.each(START_STEPS.map((step, i) => [step, i % 3] as const))(
    'three members, one killed after %s (member %i): it joins the other two and serves',
    async (step, victim) => {
      const plan = await planCluster(3, 'k');
      const started = await Promise.all(
        plan.slots.map((s, i) => startSlot(plan, s, { binary: 'etcd-ts', ...(i === victim ? { env: killAt(step), waitReady: false } : {}) })),
      );
      await expectKilledAfter(started[victim]!, step);

      const again = await startSlot(plan, plan.slots[victim]!, { binary: 'etcd-ts' });
      expect(again.output()).toContain(NEXT_START[step]);
      await expectServes(clientUrl(plan.slots[victim]!), plan.slots.map(clientUrl), plan.slots.map((s) => s.name));
      await Promise.all([...started.filter((_, i) => i !== victim), again].map((m) => stopMember(m)));
    },
  );
});

describe('a member added with etcdctl member add, killed during its first start', () => {
  it('joins once started again, killed after wal-created or after first-ready-persisted', async () => {
    const plan = await planCluster(3, 'j');
    const initialCluster = (n: number) => plan.slots.slice(0, n).map((s) => `${s.name}=http://127.0.0.1:${s.peerPort}`).join(',');
    const start = (i: number, opts: { env?: Record<string, string>; waitReady?: boolean } = {}) => {
      const s = plan.slots[i]!;
      const args = flagsFor(plan, s, i === 0 ? 'new' : 'existing', initialCluster(i + 1));
      return startMember({ name: s.name, dataDir: s.dataDir, clientPort: s.clientPort, peerPort: s.peerPort, bare: true, binary: 'etcd-ts', args, ...opts });
    };
    const running = [await start(0)];
    for (const [i, step] of [[1, 'wal-created'], [2, 'first-ready-persisted']] as const) {
      const s = plan.slots[i]!;
      // retried once a second (an etcdctl run each): the leader refuses a voter while a member it has joined recently is not yet counted healthy (etcd's strict reconfig check, 5 s)
      await eventually(() => ctl(clientUrl(plan.slots[0]!), ['member', 'add', s.name, `--peer-urls=http://127.0.0.1:${s.peerPort}`]), 30_000, 1000);
      await expectKilledAfter(await start(i, { env: killAt(step), waitReady: false }), step);
      const m = await start(i);
      expect(m.output()).toContain(NEXT_START[step]);
      running.push(m);
    }
    await expectServes(clientUrl(plan.slots[2]!), plan.slots.map(clientUrl), plan.slots.map((s) => s.name));
    await Promise.all(running.map((m) => stopMember(m)));
  });
});

/** A disk sector: what a power cut lands whole or not at all. */
const SECTOR = 512;

function firstSegment(s: Slot): string {
  return path.join(s.dataDir, 'member', 'wal', walName(0, 0));
}

/** A power cut during the first Ready's write: its first sector reached the disk, the rest did not. */
function loseSectorsAfterFirst(segment: string): void {
  const fd = openSync(segment, 'r+');
  try {
    writeSync(fd, new Uint8Array(4096 - SECTOR), 0, 4096 - SECTOR, SECTOR);
  } finally {
    closeSync(fd);
  }
}

/** The segment as the WAL reader sees it, read from a copy so the member finds the file untouched. */
async function readSegmentCopy(segment: string): Promise<WalContents> {
  const disk = new MemDisk();
  await disk.mkdirAll('/wal');
  const copy = await disk.open(path.join('/wal', walName(0, 0)), 'create');
  await copy.write(readFileSync(segment).subarray(0, 4096), 0);
  await copy.close();
  const wal = await WAL.open('/wal', { index: 0, term: 0 }, { disk });
  try {
    return await wal.readAll();
  } finally {
    await wal.close();
  }
}

describe('a first Ready torn by a power cut', () => {
  it('three members that kept some bootstrap entries but not the HardState after them bootstrap again and serve', async () => {
    // Long names make the first Ready (header, three bootstrap entries carrying each
    // member's name and URLs, the HardState) longer than one sector, so it can tear.
    const plan: ClusterPlan = await planCluster(3, 'torn-first-ready-member-');
    const first = await Promise.all(plan.slots.map((s) => startSlot(plan, s, { binary: 'etcd-ts', env: killAt('first-ready-persisted'), waitReady: false })));
    for (const m of first) await expectKilledAfter(m, 'first-ready-persisted');

    for (const s of plan.slots) {
      const whole = await readSegmentCopy(firstSegment(s));
      expect(whole.entries).toHaveLength(3);
      expect(whole.hardState.commit).toBe(3);
      loseSectorsAfterFirst(firstSegment(s));
      const torn = await readSegmentCopy(firstSegment(s));
      expect(torn.entries.length).toBeGreaterThan(0);
      expect(torn.hardState).toEqual(emptyHardState);
    }

    const members = await Promise.all(plan.slots.map((s) => startSlot(plan, s, { binary: 'etcd-ts' })));
    for (const m of members) expect(m.output()).toContain('bootstrapping the member again');
    await expectServes(clientUrl(plan.slots[1]!), plan.slots.map(clientUrl), plan.slots.map((s) => s.name));
    await Promise.all(members.map((m) => stopMember(m)));
  });
});

describe('auto TLS files a power cut left unusable', () => {
  it('are generated again, and the member serves over TLS', async () => {
    const dataDir = path.join(tempDir(), 'auto.etcd');
    const clientUrl = `https://127.0.0.1:${await freePort()}`;
    const peerUrl = `http://127.0.0.1:${await freePort()}`;
    const args = [
      '--name', 'auto', '--data-dir', dataDir, '--auto-tls',
      '--listen-client-urls', clientUrl, '--advertise-client-urls', clientUrl,
      '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl, '--initial-cluster', `auto=${peerUrl}`,
    ];
    const tlsCtl = (ctlArgs: string[]) => ctl(clientUrl, ['--insecure-transport=false', '--insecure-skip-tls-verify', ...ctlArgs]);
    const first = await startMember({ bare: true, args, binary: 'etcd-ts' });
    await tlsCtl(['put', 'k', 'before']);
    await stopMember(first);

    // openssl neither syncs its files nor renames them into place: after a power cut they
    // can come back empty or cut short
    const fixtures = path.join(dataDir, 'fixtures', 'client');
    const cert = readFileSync(path.join(fixtures, 'cert.pem'));
    writeFileSync(path.join(fixtures, 'cert.pem'), cert.subarray(0, cert.length >> 1));
    writeFileSync(path.join(fixtures, 'key.pem'), '');

    const m = await startMember({ bare: true, args, binary: 'etcd-ts' });
    expect(m.output()).toContain('auto TLS: the certificate and key left by an earlier start cannot be used; generating new ones');
    expect(await tlsCtl(['get', 'k', '--print-value-only'])).toBe('before\n');
    await stopMember(m);
  });
});
