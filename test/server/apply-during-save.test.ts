// A client's put is answered once its own entry is durable and committed, without also
// waiting for the next batch's fsync: on a lone member its entry commits in the Ready
// that writes it and applies once that write is durable; with followers, entries
// committed by earlier Readies apply while the current one's are written, as etcd's raft
// loop does. The member runs in this process; its WAL's save is wrapped so the test can
// hold writes (fault injection behind the real WAL, which still does every write).

import { afterAll, expect, it } from 'vitest';
import { startEtcd } from '../../src/index.js';
import type { WAL } from '../../src/wal/index.js';
import { cleanup, etcdctl, inProcessConfig } from '../e2e/harness.js';

afterAll(cleanup);

/** WAL saves pass while the gate is open; a held save of entries waits for release(). */
function gateSaves(wal: WAL): { hold(): void; release(): void; held(): number; open(): void } {
  const save = wal.save.bind(wal);
  let holding = false;
  let waiting: Array<() => void> = [];
  wal.save = async (...args) => {
    if (holding && args[1].length > 0) await new Promise<void>((resolve) => waiting.push(resolve));
    return save(...args);
  };
  return {
    hold: () => void (holding = true),
    release: () => {
      const go = waiting;
      waiting = [];
      for (const r of go) r();
    },
    held: () => waiting.length,
    open: () => {
      holding = false;
      wal.save = save;
    },
  };
}

async function until(what: string, cond: () => boolean): Promise<void> {
  for (const deadline = Date.now() + 15_000; !cond(); ) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

it("answers a put whose entry is durable while the next batch's WAL write is still held", async () => {
  const etcd = await startEtcd(await inProcessConfig('applier'));
  const gate = gateSaves((etcd.server as unknown as { node: { storage: { wal: WAL } } }).node.storage.wal);
  try {
    await etcd.ready;
    const url = etcd.clientUrls[0]!;
    const server = etcd.server;

    gate.hold();
    const first = etcdctl(url, ['put', 'first', '1']);
    await until("the first put's entry is being written", () => gate.held() === 1);
    const second = etcdctl(url, ['put', 'second', '2']);
    await until('the second put is proposed', () => server.stats.pendingProposals === 2);

    // The first entry becomes durable with its commit index; the next Ready carries the
    // second entry, whose write stays held.
    gate.release();
    await until("the second put's entry is being written", () => gate.held() === 1);
    // (etcdctl gives up after its 5 s command timeout if the answer waits for that write)
    expect(await first).toMatchObject({ code: 0, stdout: 'OK\n' });
    expect(gate.held()).toBe(1);
    expect(server.stats.pendingProposals).toBe(1);

    gate.release();
    gate.open();
    expect(await second).toMatchObject({ code: 0, stdout: 'OK\n' });
    expect((await server.store.range({ key: Buffer.from('first') })).kvs[0]!.value.toString()).toBe('1');
    expect((await server.store.range({ key: Buffer.from('second') })).kvs[0]!.value.toString()).toBe('2');
  } finally {
    gate.release();
    gate.open();
    await etcd.close();
  }
});
