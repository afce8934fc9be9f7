// etcdserverpb.Maintenance: status, alarms, defragment, hashes, snapshot, move-leader.

import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { ServiceImplementation, StreamCall } from '../grpc/call.js';
import { type AlarmMember, AlarmAction, alarmName } from '../alarms.js';
import { Errors, toServiceError } from '../errors.js';
import { type Int64, toBigInt, toNumber, uint64 } from '../pb.js';
import type { PbAlarmRequest } from '../raft-request.js';
import type { EtcdServer } from '../server.js';
import type { AuthGate } from '../auth/gate.js';
import { type Headers, checkNotLearner, translate, unary } from './common.js';
import { idHex } from '../ids.js';
import { openBackup } from '../backup/backup-file.js';
import { readSnapshotFrames, type SnapshotFrames } from './snapshot-frames.js';

/** The etcd release whose API etcd-ts serves; clients switch features on it. */
export const ETCD_API_VERSION = '3.4.23';
/** bytes read from the backup at a time, and sent before waiting for the client */
const SNAPSHOT_READ = 1024 * 1024;
/** etcdctl checks that a snapshot is a whole number of 512-byte blocks plus a SHA-256. */
const SNAPSHOT_ALIGN = 512;

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

export function maintenanceService(server: EtcdServer, headers: Headers, gate: AuthGate, observe: MaintenanceObserver, log?: Logger): ServiceImplementation {
  function alarmsToPb(list: readonly AlarmMember[]): object[] {
    return list.map((a) => ({ memberID: uint64(a.memberId), alarm: a.alarm }));
  }

  return {
    Status: unary(async () => {
      const errors: string[] = [];
      if (server.leader === 0n) errors.push(Errors.noLeader.message);
      for (const a of server.alarms.list()) errors.push(`memberID:${idHex(a.memberId)} alarm:${alarmName(a.alarm)} `);
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
      if (req.action === AlarmAction.GET) {
        const memberId = toBigInt(req.memberID, true);
        return { alarms: alarmsToPb(server.alarms.list(req.alarm, memberId)) };
      }
      return { alarms: alarmsToPb(await server.proposals.propose({ kind: 'alarm', body: req })) };
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
        .then(() => streamSnapshot(server, call, log))
        .catch((err: unknown) => {
          call.emit('error', toServiceError(translate(err)));
        });
    },
  };
}

/**
 * Streams the member's backup as etcd does: etcd's bbolt database in 32 KiB chunks, each
 * with the bytes still to come, then one last message holding the SHA-256 of everything
 * sent. etcdctl takes a stream whose length is a whole number of 512-byte blocks plus 32
 * bytes as one that carries the checksum; bbolt files are whole pages, so they are.
 */
async function streamSnapshot(server: EtcdServer, call: StreamCall<object, object>, log: Logger | undefined): Promise<void> {
  checkNotLearner(server);
  const cancelled = new AbortController();
  const onCancel = () => cancelled.abort();
  call.once('cancelled', onCancel);
  try {
    const started = performance.now();
    const { file, size } = await openBackup(server.snapDir, await server.backupState(), cancelled.signal);
    try {
      if (size % SNAPSHOT_ALIGN !== 0) throw new Error(`the backup is ${size} bytes, not whole ${SNAPSHOT_ALIGN}-byte blocks`);
      const built = performance.now();
      // etcd's log lines, with the time the file took to write before the first byte went
      log?.info({ 'total-bytes': size, 'built-in': msSince(started) }, 'sending database snapshot to client');
      await sendFile(file, size, call, cancelled.signal);
      if (!cancelled.signal.aborted) log?.info({ 'total-bytes': size, took: msSince(started), 'sent-in': msSince(built) }, 'successfully sent database snapshot to client');
    } finally {
      await file.close();
    }
  } finally {
    call.off('cancelled', onCancel);
  }
}

function msSince(t: number): string {
  return `${Math.round(performance.now() - t)}ms`;
}

async function sendFile(file: FileHandle, size: number, call: StreamCall<object, object>, cancelled: AbortSignal): Promise<void> {
  const sha = createHash('sha256');
  const read = (from: number) => readSnapshotFrames(file, size, from, Math.min(SNAPSHOT_READ, size - from));
  let sent = 0;
  // the next read runs while this one is sent
  let next: Promise<SnapshotFrames> | undefined = size > 0 ? read(0) : undefined;
  try {
    while (next !== undefined) {
      const batch = await next;
      sent += batch.bytes;
      next = sent < size ? read(sent) : undefined;
      for (const r of batch.responses) sha.update(r.blob);
      // Waiting for 'drain' after each message would cost an event-loop turn per 32 KiB
      // (HTTP/2 buffers little); a read's worth goes out, then we wait.
      if (!send(call, batch)) await drained(call, cancelled);
      if (cancelled.aborted) return;
    }
  } finally {
    await next?.catch(() => undefined);
  }
  call.write({ remaining_bytes: 0, blob: sha.digest() });
  call.end();
}

/** Writes one read's messages, framed as they are when the call takes that; false when the client's window is full. */
function send(call: StreamCall<object, object>, batch: SnapshotFrames): boolean {
  if (call.writeFramed !== undefined) return call.writeFramed(batch.frames, batch.messageSizes);
  let room = true;
  for (const r of batch.responses) room = call.write(r) && room;
  return room;
}

/** Resolves once the client can take more, or it has gone. */
function drained(call: StreamCall<object, object>, cancelled: AbortSignal): Promise<void> {
  if (cancelled.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      call.off('drain', done);
      cancelled.removeEventListener('abort', done);
      resolve();
    };
    call.on('drain', done);
    cancelled.addEventListener('abort', done);
  });
}
