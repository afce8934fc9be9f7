// Whether a peer is reachable, since when, and the byte counters for it. Both stream
// directions report here, as etcd's peerStatus: either one failing makes the peer inactive.

import type { Logger } from 'pino';
import { type Message, MessageType } from '../../raftpb/index.js';
import { idHex16 } from '../ids.js';

export interface PeerCounters {
  /** bytes written to the peer (streams and snapshots) */
  sentBytes: number;
  /** bytes read from the peer (streams and snapshots) */
  receivedBytes: number;
  /** messages dropped instead of sent (queue full or stream down) */
  sentFailures: number;
  /** heartbeats among those (etcd_server_heartbeat_send_failures_total) */
  heartbeatSendFailures: number;
  /** messages from the peer that could not be read */
  receivedFailures: number;
  /** times the peer went from reachable to unreachable */
  disconnects: number;
}

export class PeerStatus {
  readonly counters: PeerCounters = { sentBytes: 0, receivedBytes: 0, sentFailures: 0, heartbeatSendFailures: 0, receivedFailures: 0, disconnects: 0 };
  private since: number | undefined;

  constructor(
    private readonly peerId: bigint,
    private readonly log: Logger,
  ) {}

  /** ms timestamp since which the peer is reachable, undefined while it is not */
  get activeSince(): number | undefined {
    return this.since;
  }

  /** Counts messages dropped instead of sent, heartbeats apart (a slow peer or disk shows there first). */
  dropped(messages: readonly Message[]): void {
    this.counters.sentFailures += messages.length;
    for (const m of messages) if (m.type === MessageType.MsgHeartbeat) this.counters.heartbeatSendFailures++;
  }

  activate(): void {
    if (this.since !== undefined) return;
    this.since = Date.now();
    this.log.info({ 'peer-id': idHex16(this.peerId) }, 'peer became active');
  }

  deactivate(reason: string): void {
    if (this.since === undefined) return;
    this.since = undefined;
    this.counters.disconnects++;
    this.log.warn({ 'peer-id': idHex16(this.peerId), error: reason }, 'peer became inactive (message send to peer failed)');
  }
}
