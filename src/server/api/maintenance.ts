// etcdserverpb.Maintenance: status, alarms, defragment, hashes, snapshot, move-leader.

import { createHash } from 'node:crypto';
import type { ServiceImplementation, StreamCall } from '../grpc/call.js';
import { AlarmType } from '../alarms.js';
import { Errors, toServiceError } from '../errors.js';
import { type Int64, toBigInt, toNumber, uint64 } from '../pb.js';
import type { EtcdServer } from '../server.js';
import type { AuthGate } from '../auth/gate.js';
import { type Headers, checkNotLearner, translate, unary } from './common.js';
import { idHex } from '../ids.js';

/** The etcd release whose API etcd-ts serves; clients switch features on it. */
export const ETCD_API_VERSION = '3.4.23';
const SNAPSHOT_CHUNK = 32 * 1024;
/** etcdctl checks that a snapshot is a whole number of 512-byte blocks plus a SHA-256. */
const SNAPSHOT_ALIGN = 512;

interface PbAlarmRequest {
  action: number;
  memberID: Int64;
  alarm: number;
}

/** How long the store's maintenance work takes, for etcd's disk and mvcc histograms. */
export interface MaintenanceObserver {
  hash(seconds: number): void;
  hashKV(seconds: number): void;
  defragStarted(): void;
  defragEnded(seconds: number): void;
}

/** Runs `work`, reporting how long it took in seconds (also when it fails). */
async function timed<T>(work: () => Promise<T>, report: (seconds: number) => void): Promise<T> {
  const start = performance.now();
  try {
    return await work();
  } finally {
    report((performance.now() - start) / 1000);
  }
}

export function maintenanceService(server: EtcdServer, headers: Headers, gate: AuthGate, observe: MaintenanceObserver): ServiceImplementation {
  function alarmsToPb(list: ReadonlyArray<{ memberId: bigint; alarm: number }>): object[] {
    return list.map((a) => ({ memberID: uint64(a.memberId), alarm: a.alarm }));
  }

  return {
    Status: unary(async () => {
      const errors: string[] = [];
      if (server.leader === 0n) errors.push(Errors.noLeader.message);
      for (const a of server.alarms.list()) errors.push(`memberID:${idHex(a.memberId)} alarm:${AlarmType[a.alarm]} `);
      return {
        header: headers.make(),
        version: ETCD_API_VERSION,
        dbSize: server.store.dbSize(),
        leader: uint64(server.leader),
        raftIndex: server.committed,
        raftTerm: server.raftTerm,
        raftAppliedIndex: server.applied,
        errors,
        dbSizeInUse: server.store.dbSizeInUse(),
        isLearner: server.isLearner,
      };
    }),

    Alarm: unary(async (req: PbAlarmRequest) => {
      checkNotLearner(server);
      if (req.action === 0) {
        const memberId = toBigInt(req.memberID, true);
        return { alarms: alarmsToPb(server.alarms.list(req.alarm, memberId)) };
      }
      const list = await server.propose<Array<{ memberId: bigint; alarm: number }>>({ alarm: req });
      return { alarms: alarmsToPb(list) };
    }),

    Defragment: unary(async (_req: object, call) => {
      checkNotLearner(server);
      await gate.maintenanceAdmin(call);
      observe.defragStarted();
      await timed(() => server.store.defragment(), observe.defragEnded);
      return { header: headers.make() };
    }),

    Hash: unary(async (_req: object, call) => {
      checkNotLearner(server);
      await gate.maintenanceAdmin(call);
      const r = await server.read((store) => timed(() => store.hash(), observe.hash));
      return { header: headers.make(r.revision), hash: r.hash };
    }),

    HashKV: unary(async (req: { revision: Int64 }, call) => {
      checkNotLearner(server);
      await gate.maintenanceAdmin(call);
      const r = await server.read((store) => timed(() => store.hashKV(toNumber(req.revision)), observe.hashKV));
      return { header: headers.make(r.revision), hash: r.hash, compact_revision: r.compactRevision };
    }),

    MoveLeader: unary(async (req: { targetID: Int64 }) => {
      checkNotLearner(server);
      const target = toBigInt(req.targetID, true);
      if (!server.isLeader) throw Errors.notLeader;
      const m = server.membership.get(target);
      if (!m || m.isLearner) throw Errors.badLeaderTransferee;
      if (target === server.memberId) return { header: headers.make() };
      server.transferLeadership(target);
      const deadline = Date.now() + server.requestTimeoutMs();
      while (server.leader !== target) {
        if (Date.now() > deadline) throw Errors.timeout;
        await new Promise((r) => setTimeout(r, 50));
      }
      return { header: headers.make() };
    }),

    Snapshot: (call: StreamCall<object, object>) => {
      gate
        .maintenanceAdmin(call)
        .then(() => streamSnapshot(server, call))
        .catch((err: unknown) => {
          call.emit('error', toServiceError(translate(err)));
        });
    },
  };
}

/**
 * Streams the whole store, zero-padded to 512-byte blocks, in 32 KiB chunks with the
 * bytes still to come, then one last message holding the SHA-256 of everything sent.
 */
async function streamSnapshot(server: EtcdServer, call: StreamCall<object, object>): Promise<void> {
  checkNotLearner(server);
  const { size, stream } = server.store.snapshot();
  const padded = Math.ceil(size / SNAPSHOT_ALIGN) * SNAPSHOT_ALIGN;
  const sha = createHash('sha256');
  let sent = 0;
  let pending: Buffer = Buffer.alloc(0);

  const send = async (blob: Buffer) => {
    sha.update(blob);
    sent += blob.length;
    if (!call.write({ remaining_bytes: padded - sent, blob })) {
      await new Promise<void>((resolve) => call.once('drain', resolve));
    }
  };

  for await (const chunk of stream) {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= SNAPSHOT_CHUNK) {
      await send(pending.subarray(0, SNAPSHOT_CHUNK));
      pending = pending.subarray(SNAPSHOT_CHUNK);
    }
  }
  if (sent + pending.length !== size) throw new Error(`snapshot stream gave ${sent + pending.length} bytes, expected ${size}`);
  const tail = Buffer.concat([pending, Buffer.alloc(padded - size)]);
  for (let off = 0; off < tail.length; off += SNAPSHOT_CHUNK) await send(tail.subarray(off, off + SNAPSHOT_CHUNK));
  call.write({ remaining_bytes: 0, blob: sha.digest() });
  call.end();
}
