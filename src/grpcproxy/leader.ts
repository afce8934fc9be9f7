// Whether the cluster has a leader, as etcd's proxy learns it (leader.go): a watch that
// requires a leader, on a key at a revision no event will ever reach, breaks when the
// member it is on loses its leader. Client streams that asked to fail without a leader
// (clientv3's `hasleader`, which etcdctl watch sets) are ended with etcd's error then.

import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { Errors } from '../server/errors.js';
import { methodsOf, type Upstream } from './upstream.js';

const Watch = methodsOf('etcdserverpb.Watch').Watch!;
const LOST_LEADER_KEY = Buffer.from('__lostleader');
/** math.MaxInt64 - 2, etcd's revision for it */
const NEVER = '9223372036854775805';
/** etcd tries again at most 10 times a second */
const RETRY_MS = 100;
/**
 * How long "no leader" must last before client streams are ended: etcd's members end
 * streams that require a leader after 3 election timeouts without one (maxNoLeaderCnt,
 * 1 s each by default), so an election after a leader died ends none. Answering at the
 * first "no leader" would end every etcdctl watch through the proxy at each election.
 */
const LOST_AFTER_MS = 3_000;

export class LeaderMonitor {
  /** No answer yet counts as a leader: a client is not refused before the proxy has asked. */
  private lost = false;
  /** when the cluster first said it has no leader, in this run of such answers */
  private noLeaderSince: number | undefined;
  private readonly listeners = new Set<() => void>();
  private stream: grpc.ClientDuplexStream<object, object> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly upstream: Upstream,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.closed) return;
    const md = new grpc.Metadata();
    md.set('hasleader', 'true');
    const stream = this.upstream.bidi(Watch, md);
    this.stream = stream;
    stream.on('data', (resp: { created?: boolean; canceled?: boolean }) => {
      if (resp.created && !resp.canceled) {
        this.noLeaderSince = undefined;
        this.setLost(false);
      }
    });
    const broken = (err?: grpc.ServiceError): void => {
      if (this.stream !== stream || this.closed) return;
      this.stream = undefined;
      // a member that went away is not a lost leader: the watch moves to the next endpoint
      if (err?.details === Errors.noLeader.message) {
        this.noLeaderSince ??= Date.now();
        if (Date.now() - this.noLeaderSince >= LOST_AFTER_MS) this.setLost(true);
      }
      this.timer = setTimeout(() => this.start(), RETRY_MS);
    };
    stream.on('error', broken);
    stream.on('end', () => broken());
    stream.write({ create_request: { key: LOST_LEADER_KEY, start_revision: NEVER } });
  }

  get hasLeader(): boolean {
    return !this.lost;
  }

  /** Calls `fn` each time the leader is lost, until the returned function is called. */
  onLost(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.stream?.cancel();
  }

  private setLost(lost: boolean): void {
    if (lost === this.lost) return;
    this.lost = lost;
    this.log.info({ 'has-leader': !lost }, lost ? 'lost the cluster leader' : 'the cluster has a leader');
    if (lost) for (const fn of [...this.listeners]) fn();
  }
}
