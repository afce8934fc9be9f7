// etcdserverpb.Maintenance: status, alarms, defragment, hashes, snapshot, move-leader.

import type { Logger } from 'pino';
import type { ServiceImplementation, StreamCall } from '../grpc/call.js';
import { type AlarmMember, alarmName } from '../alarms.js';
import { Errors, toServiceError } from '../errors.js';
import { type Int64, toBigInt, toNumber, uint64 } from '../pb.js';
import type { PbAlarmRequest } from '../raft-request.js';
import type { EtcdServer } from '../server.js';
import type { AuthGate } from '../auth/gate.js';
import { type Headers, checkNotLearner, translate, unary } from './common.js';
import { idHex } from '../ids.js';
import { openBackup } from '../backup/backup-file.js';
import { etcdStreamLayout } from '../backup/etcd-db.js';
import { ExportThread } from '../backup/export-thread.js';
import { finishSnapshot, sendFile, sendFrames } from './snapshot-stream.js';

/** The etcd release whose API etcd-ts serves; clients switch features on it. */
export const ETCD_API_VERSION = '3.4.23';
/** etcdctl checks that a snapshot is a whole number of 512-byte blocks plus a SHA-256. */
const SNAPSHOT_ALIGN = 512;

/** How long the store's maintenance work takes, for etcd's disk and mvcc histograms. */
export interface MaintenanceObserver {
  hash(seconds: number): void;
  hashKV(seconds: number): void;
  defragStarted(): void;
  defragEnded(seconds: number): void;
  /** a backup streamed to a client ended, sent or not */
  snapshot(seconds: number): void;
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
      // a GET too goes through raft, as etcd's does: it answers what the cluster agreed on
      // when it applied (a member that lost its quorum times out rather than answering)
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
        .then(() => streamSnapshot(server, call, log, observe.snapshot))
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
 *
 * The database is sent while the store is read, in a layout fixed from the store's sizes
 * (bbolt's stream-layout.ts), so the client receives and writes while the member reads;
 * a store with records too large for that layout is written to a file first, then sent.
 */
async function streamSnapshot(server: EtcdServer, call: StreamCall<object, object>, log: Logger | undefined, observed: (seconds: number) => void): Promise<void> {
  checkNotLearner(server);
  const cancelled = new AbortController();
  const onCancel = () => cancelled.abort();
  call.once('cancelled', onCancel);
  const started = performance.now();
  try {
    const thread = await startExportThread(server, log);
    // without a thread this one writes the file, as a peer's snapshot or a .snap's export does then
    if (thread === undefined) return await sendWrittenFirst(server, await server.backupState(), undefined, call, cancelled.signal, log, started);
    try {
      const state = await server.backupState(thread);
      const layout = etcdStreamLayout(state.view, state.cluster);
      if (layout === undefined) return await sendWrittenFirst(server, state, thread, call, cancelled.signal, log, started);
      try {
        log?.info({ 'total-bytes': layout.size, 'sent-while-read': true }, 'sending database snapshot to client');
        const { freePages, checksum } = await thread.stream(layout, state.view.point, state.cluster, (frames) => sendFrames(call, frames, cancelled.signal));
        finishSnapshot(call, checksum);
        log?.info({ 'total-bytes': layout.size, 'free-pages': freePages, took: msSince(started) }, 'successfully sent database snapshot to client');
      } finally {
        await state.view.close();
      }
    } finally {
      await thread.close();
    }
  } catch (err) {
    // a client that cancelled hears nothing more
    if (!cancelled.signal.aborted) throw err;
  } finally {
    call.off('cancelled', onCancel);
    // etcd times a backend snapshot until it is closed, whatever became of the transfer
    observed((performance.now() - started) / 1000);
  }
}

/** A thread to read the store in, or undefined (logged) when none starts. */
async function startExportThread(server: EtcdServer, log: Logger | undefined): Promise<ExportThread | undefined> {
  try {
    return await ExportThread.start(server.store);
  } catch (err) {
    log?.warn({ error: (err as Error).message }, "could not start the export thread; the member's thread writes the backup");
    return undefined;
  }
}

/** The backup written to a file, by `thread` or else by this one, then sent (openBackup closes the view). */
async function sendWrittenFirst(
  server: EtcdServer,
  state: Awaited<ReturnType<EtcdServer['backupState']>>,
  thread: ExportThread | undefined,
  call: StreamCall<object, object>,
  cancelled: AbortSignal,
  log: Logger | undefined,
  started: number,
): Promise<void> {
  const { file, size } = await openBackup(server.snapDir, state, { signal: cancelled, thread });
  try {
    if (size % SNAPSHOT_ALIGN !== 0) throw new Error(`the backup is ${size} bytes, not whole ${SNAPSHOT_ALIGN}-byte blocks`);
    const built = performance.now();
    // etcd's log lines, with the time the file took to write before the first byte went
    log?.info({ 'total-bytes': size, 'written-in': msSince(started) }, 'sending database snapshot to client');
    await sendFile(file, size, call, cancelled);
    if (!cancelled.aborted) log?.info({ 'total-bytes': size, took: msSince(started), 'sent-in': msSince(built) }, 'successfully sent database snapshot to client');
  } finally {
    await file.close();
  }
}

function msSince(t: number): string {
  return `${Math.round(performance.now() - t)}ms`;
}
