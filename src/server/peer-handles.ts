// The peer transport's handles on a member: raft messages in (a MsgSnap never without
// its store), what became of messages sent, and the store that travels with a raft
// snapshot, out to a follower or in from the leader.

import type { Logger } from 'pino';
import { MessageType, type Message } from '../raftpb/types.js';
import { openBackup, readBackup } from './backup/backup-file.js';
import { etcdStreamLayout } from './backup/etcd-db.js';
import { StreamedBackup } from './backup/streamed-backup.js';
import type { Applier } from './applier.js';
import { idHex16 } from './ids.js';
import type { RaftNode } from './raft-node.js';
import type { SnapshotInbox } from './snapshot-inbox.js';
import type { RaftHandle, SnapshotHooks } from './transport/index.js';

export interface PeerHandleParts {
  readonly node: RaftNode;
  readonly applier: Applier;
  readonly inbox: SnapshotInbox;
  /** member/snap: a backup of the store that cannot be sent as it is read is written out there first */
  readonly snapDir: string;
  stopped(): boolean;
  readonly log: Logger;
  /** a backup of the store has gone out to a peer, this long after it was asked for */
  readonly snapshotSent: (seconds: number) => void;
}

/** The transport's handle on raft. */
export function raftHandle(p: PeerHandleParts): RaftHandle {
  return {
    process: (m: Message) => {
      // Raft must never accept a snapshot without the store that goes with it (the log
      // behind it is gone): a MsgSnap is stepped only by the snapshot inbox.
      if (m.type === MessageType.MsgSnap) {
        p.log.warn(
          { 'remote-peer-id': idHex16(m.from), 'incoming-snapshot-index': m.snapshot?.metadata.index ?? 0 },
          'dropped a MsgSnap that came without its store',
        );
        return;
      }
      if (!p.stopped()) p.node.step(m);
    },
    check: (m) => p.node.check(m),
    reportUnreachable: (id) => {
      if (!p.stopped()) p.node.reportUnreachable(id);
    },
    reportSnapshot: (id, status) => {
      if (!p.stopped()) p.node.reportSnapshot(id, status);
    },
  };
}

/** The transport's handle on the store, to ship it with a raft snapshot and to receive one. */
export function snapshotHooks(p: PeerHandleParts): SnapshotHooks {
  return {
    prepare: async (m) => {
      const started = performance.now();
      // the export in a worker thread: a large store's takes seconds, which this thread
      // spends serving clients and heartbeating the other followers; without one (it
      // could not start) this thread exports, rather than leave the follower behind
      const thread = await p.applier.startExportThread().catch((err: Error) => {
        p.log.warn({ error: err.message }, 'could not start the export thread; the snapshot for the follower is exported on the member thread');
        return undefined;
      });
      let handedOver = false;
      try {
        const { message, state } = await p.applier.snapshotToSend(m, thread);
        const layout = thread === undefined ? undefined : etcdStreamLayout(state.view, state.cluster);
        if (thread !== undefined && layout !== undefined) {
          // etcd's backend database sent as the thread reads it; the stream owns thread and view
          handedOver = true;
          p.log.info({ 'remote-peer-id': idHex16(m.to), 'total-bytes': layout.size, 'sent-while-read': true }, 'streaming the database snapshot while it is read');
          return { message, size: layout.size, stream: timedSend(new StreamedBackup(thread, layout, state), started, p.snapshotSent) };
        }
        // without a thread, or with records too large for the streamed layout: written out
        // beside the live store first, and streamed from there
        const backup = await openBackup(p.snapDir, state, thread === undefined ? {} : { thread });
        return { message, size: backup.size, stream: timedSend(readBackup(backup), started, p.snapshotSent) };
      } finally {
        if (!handedOver) await thread?.close();
      }
    },
    receive: (m, stream) => p.inbox.receive(m, stream),
  };
}

/** `stream`, reporting once it has been read to its end how long the send took since `started` (etcd times a backend snapshot until it is closed). */
async function* timedSend(stream: AsyncIterable<Buffer>, started: number, report: (seconds: number) => void): AsyncGenerator<Buffer> {
  yield* stream;
  report((performance.now() - started) / 1000);
}
