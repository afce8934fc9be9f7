// Regression (soak seed 301, member+kill): watches open on a member that installs a
// leader snapshot must go on from where they were, catching up from the new store's
// history. Before the fix they stayed bound to the replaced store: no events, yet
// timed progress notifications claimed the member's new revision. Reads sent to the
// member meanwhile must not fail on the store being replaced.
// Three etcd-ts processes behind the jepsen peer proxies; one member is blackholed
// while the others write past the leader's 100-entry catch-up window, and until the
// leader's raft log no longer holds what the cut member lacks.

import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseSnapName } from '../../src/wal/names.js';
import { Cluster } from '../../verify/cluster.js';
import type { PbWatchResponse } from '../../verify/client.js';
import { eventually } from '../e2e/cluster-harness.js';

/** entries the members keep behind a snapshot (--experimental-snapshot-catchup-entries) */
const CATCH_UP_ENTRIES = 100;
const dir = mkdtempSync(path.join(tmpdir(), 'etcd-ts-snapshot-watch-'));
let cluster: Cluster | undefined;
afterAll(async () => {
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('watches across a snapshot install', () => {
  it('deliver every event from their start revision, current and future watches alike', async () => {
    cluster = await Cluster.start({ size: 3, binary: 'etcd-ts', dir, snapshotCount: 100, quotaBackendBytes: 0, progressNotifyMs: 500, snapshotCatchUpEntries: CATCH_UP_ENTRIES, seed: 1 });
    const c = cluster;
    const leader = await eventually(async () => (await c.leader()) ?? Promise.reject(new Error('no leader yet')), 10_000);
    const cut = (leader + 1) % 3;
    const writer = cluster.client(leader);
    const startRev = (await writer.execute({ type: 'put', key: 'before', value: 'x', lease: '0' }, 5000)).revision;

    // watches on the member about to be cut off: from now, and from a revision it has not reached
    const futureStart = startRev + 300;
    const got = new Map<string, number[]>([
      ['0', []],
      ['1', []],
    ]);
    /** timed progress notifications: the header revision, and how many events had arrived by then */
    const progress: Array<{ watch: string; revision: number; delivered: number }> = [];
    let ended: unknown = null;
    let created = 0;
    const stream = cluster.client(cut).watch(
      (r: PbWatchResponse) => {
        if (r.created) created++;
        const revs = got.get(r.watch_id);
        for (const ev of r.events) revs?.push(Number(ev.kv!.mod_revision));
        if (r.events.length === 0 && !r.created && revs) progress.push({ watch: r.watch_id, revision: Number(r.header!.revision), delivered: revs.length });
      },
      (err) => (ended = err ?? 'ended'),
    );
    stream.create({ key: 'bulk/', end: 'bulk0', startRevision: 0, prevKv: false, progressNotify: true, filters: [] });
    stream.create({ key: 'bulk/', end: 'bulk0', startRevision: futureStart, prevKv: false, progressNotify: true, filters: [] });
    await eventually(async () => expect(created).toBe(2), 10_000);

    for (let other = 0; other < 3; other++) {
      if (other !== cut) {
        cluster.network.setFault(cut, other, { kind: 'blackhole' });
        cluster.network.setFault(other, cut, { kind: 'blackhole' });
      }
    }
    // nothing is being written: what the cut member holds, the leader has committed by now
    const cutIndex = (await writer.status(5000)).raftIndex;
    const total = 600;
    let next = 0;
    let lastRev = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        for (let i = next++; i < total; i = next++) {
          const r = await writer.execute({ type: 'put', key: `bulk/${String(i).padStart(5, '0')}`, value: `v${i}`, lease: '0' }, 10_000);
          lastRev = Math.max(lastRev, r.revision);
        }
      }),
    );
    expect(lastRev).toBe(startRev + total);

    // The leader's snapshots, and the raft log compaction after each, trail its writes
    // (under load by thousands of entries): healed before its log dropped the entries
    // the cut member lacks, the member would catch up from the log instead. Snapshots are
    // saved one at a time, each compacting the log to its index minus the catch-up window
    // before the next begins, so a second .snap past the window proves the first one's
    // compaction done. Both members that were not cut must show it: on a loaded machine
    // leadership may move between them while they write (a CI run once healed with the
    // other one leading, its log not yet compacted). Writes outside the watched range move
    // them on until then.
    const snapshotsPast = (member: number): number =>
      readdirSync(path.join(c.members[member]!.dataDir, 'member', 'snap')).filter(
        (f) => (parseSnapName(f)?.index ?? 0) > cutIndex + CATCH_UP_ENTRIES,
      ).length;
    const uncut = [0, 1, 2].filter((m) => m !== cut);
    for (let round = 0; Math.min(...uncut.map(snapshotsPast)) < 2; round++) {
      if (round === 100) throw new Error(`the members took fewer than two snapshots past index ${cutIndex + CATCH_UP_ENTRIES} in 5000 more writes`);
      await Promise.all(Array.from({ length: 50 }, () => writer.execute({ type: 'put', key: 'filler', value: 'x', lease: '0' }, 10_000)));
    }

    // Reads on the cut member go on while it swaps in the leader's store: each waits for
    // the new store rather than failing on the closed one (serializable, so the member
    // answers them itself, without the leader).
    const reader = cluster.client(cut);
    const readErrors: string[] = [];
    let reads = 0;
    let reading = true;
    const readLoop = (async () => {
      while (reading) {
        try {
          await reader.execute({ type: 'range', key: 'before', end: '', serializable: true }, 10_000);
          reads++;
        } catch (err) {
          readErrors.push((err as Error).message);
        }
      }
    })();
    cluster.network.healAll();

    // the member caught up through a snapshot (the log it missed was compacted away)
    const metricsUrl = `http://${cluster.endpoint(cut)}/metrics`;
    try {
      await eventually(async () => {
        const metrics = await fetch(metricsUrl).then((r) => r.text());
        expect(metrics).toMatch(/^etcd_network_snapshot_receive_success\{From="[0-9a-f]+"\} 1$/m);
        // the leader's database, saved beside the live store, and its fsync
        expect(metrics).toMatch(/^etcd_snap_db_save_total_duration_seconds_count 1$/m);
        expect(metrics).toMatch(/^etcd_snap_db_fsync_duration_seconds_count 1$/m);
        // and one of the others (the leader when it sent) timed the backup it streamed
        const sent = await Promise.all(
          uncut.map(async (m) => {
            const text = await fetch(`http://${cluster.endpoint(m)}/metrics`).then((r) => r.text());
            return Number(/^etcd_disk_backend_snapshot_duration_seconds_count (\d+)$/m.exec(text)?.[1] ?? 0);
          }),
        );
        expect(sent.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1);
      }, 60_000);
    } finally {
      // on every way out: a loop left reading from stopped members spins until the worker runs out of memory
      reading = false;
      await readLoop;
    }
    expect(readErrors).toEqual([]);
    expect(reads).toBeGreaterThan(0);
    await eventually(async () => expect(got.get('0')!.length).toBe(total), 30_000);
    const current = got.get('0')!;
    expect(current[0]).toBe(startRev + 1);
    expect(current.every((r, i) => i === 0 || r === current[i - 1]! + 1)).toBe(true);
    await eventually(async () => expect(got.get('1')!.length).toBe(lastRev - futureStart + 1), 30_000);
    const future = got.get('1')!;
    expect(future[0]).toBe(futureStart);
    expect(future.every((r, i) => i === 0 || r === future[i - 1]! + 1)).toBe(true);
    expect(ended).toBeNull();
    // a progress notification at revision h says every event up to h was sent
    const firstOf = (watch: string) => (watch === '0' ? startRev + 1 : futureStart);
    const owed = (p: (typeof progress)[number]) => Math.max(0, Math.min(p.revision, lastRev) - firstOf(p.watch) + 1);
    await eventually(async () => expect(progress.some((p) => p.revision >= lastRev)).toBe(true), 10_000);
    expect(progress.filter((p) => p.delivered < owed(p))).toEqual([]);
    stream.close();
  }, 300_000); // 6,000 writes through three members: 45–125 s at load 25 on two cores
});
