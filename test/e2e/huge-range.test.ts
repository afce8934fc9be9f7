// A range over hundreds of thousands of keys (bench/scale: etcdctl's keys-only range of
// 1.57 M keys never answered). The member reads and encodes it a slice at a time
// (MvccStore.rangeInSlices, api/range-encoder.ts) and serves its event loop between
// slices: the client's HTTP/2 keepalive PINGs are answered, so a client that allows the
// server a second of silence keeps its connection and gets every key, and other
// clients' lease keep-alives and puts (raft proposals) are answered meanwhile. Built in
// one turn, the answer held the loop for longer than that: the client closed the
// connection ("transport is closing" for etcdctl) and no keep-alive was answered.

import * as grpc from '@grpc/grpc-js';
import { afterAll, expect, it } from 'vitest';
import { EtcdClient } from './client.js';
import { binary, cleanup, startMember, stopMember } from './harness.js';

afterAll(cleanup);

const KEYS = 150_000;
const PER_TXN = 10_000;
const key = (i: number): string => `k/${String(i).padStart(7, '0')}`;

type KeepAliveStream = grpc.ClientDuplexStream<{ ID: string }, { ID: string; TTL: string }>;

/** One keep-alive on an open LeaseKeepAlive stream; resolves with the TTL it was answered with. */
function keepAlive(stream: KeepAliveStream, id: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onData = (r: { TTL: string }): void => {
      stream.off('error', reject);
      resolve(Number(r.TTL));
    };
    stream.once('data', onData);
    stream.once('error', reject);
    stream.write({ ID: id });
  });
}

// the member lets a client ping every 100 ms during a call (--grpc-keepalive-min-time); at
// etcd's 5 s default it sends such a client GOAWAY too_many_pings, as grpc-go does
it.skipIf(binary === 'etcd')(
  `a keys-only range over ${KEYS} keys answers a client with a 1 s keepalive timeout, while another client's lease keep-alives and puts are answered`,
  async () => {
    const m = await startMember({ args: ['--max-txn-ops', String(PER_TXN), '--grpc-keepalive-min-time', '100ms'] });
    const other = new EtcdClient(m.clientUrl);
    // pings every 200 ms once the connection is quiet, and gives up on the server after 1 s without an answer
    const ranger = new EtcdClient(m.clientUrl, {
      'grpc.keepalive_time_ms': 200,
      'grpc.keepalive_timeout_ms': 1000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.max_receive_message_length': -1,
    });
    let stream: KeepAliveStream | undefined;
    try {
      for (let from = 0; from < KEYS; from += PER_TXN) {
        const success = Array.from({ length: PER_TXN }, (_, j) => ({ request_put: { key: Buffer.from(key(from + j)), value: Buffer.from('v') } }));
        await other.call(other.kv, 'Txn', { success }, new grpc.Metadata(), { deadline: Date.now() + 60_000 });
      }
      const { ID } = await other.call<{ ID: string }>(other.lease, 'LeaseGrant', { TTL: 600 });
      stream = (other.lease as unknown as { LeaseKeepAlive(o: object): KeepAliveStream }).LeaseKeepAlive({ deadline: Date.now() + 300_000 });
      // its end (cancelled below) must not be an unhandled error; keepAlive listens for its own
      stream.on('error', () => undefined);
      expect(await keepAlive(stream, ID)).toBeGreaterThan(0);

      // the ranger's connection is up before the loop below starts counting
      await ranger.call(ranger.kv, 'Range', { key: Buffer.from(key(0)) });
      let answered = false;
      const range = ranger
        .call<{ kvs: Array<{ key: Buffer; value: Buffer }>; count: string; more: boolean }>(
          ranger.kv,
          'Range',
          { key: Buffer.from('k/'), range_end: Buffer.from('k0'), keys_only: true, serializable: true },
          new grpc.Metadata(),
          { deadline: Date.now() + 240_000 },
        )
        .finally(() => (answered = true));
      // a failure is seen where the range is awaited, below
      range.catch(() => undefined);
      // keep-alives and puts from the other client until the range is answered (or failed)
      let servedMeanwhile = 0;
      while (!answered) {
        const ttl = await keepAlive(stream, ID);
        await other.put('meanwhile', String(servedMeanwhile), 60_000);
        if (answered) break;
        expect(ttl).toBeGreaterThan(0);
        servedMeanwhile++;
      }

      const r = await range;
      expect(Number(r.count)).toBe(KEYS);
      expect(r.more).toBe(false);
      expect(r.kvs.length).toBe(KEYS);
      for (let i = 0; i < KEYS; i += 997) expect(r.kvs[i]!.key.toString()).toBe(key(i));
      expect(r.kvs[KEYS - 1]!.key.toString()).toBe(key(KEYS - 1));
      expect(r.kvs.every((kv) => kv.value.length === 0)).toBe(true);
      // one turn of the event loop for the whole range answers at most the one in flight
      expect(servedMeanwhile).toBeGreaterThanOrEqual(3);
    } finally {
      stream?.cancel();
      other.close();
      ranger.close();
      await stopMember(m);
    }
  },
  300_000,
);
