// etcd's remote (rafthttp/remote.go): a member this one has to answer but does not count
// among its peers yet. A member that restarts behind the cluster does not know the members
// added while it was down; when one of them leads, its messages arrive from an unknown
// sender, and raft's answers go to an unknown target. etcd steps such messages anyway and
// answers through a "remote", reached at the URLs the sender named in X-PeerURLs, by the
// pipeline only (no streams). Once the member applies the ConfChange that adds the sender,
// the sender becomes a peer and the remote is dropped.

import type { Logger } from 'pino';
import type { Message } from '../../raftpb/index.js';
import type { TlsContext } from '../tls.js';
import { Pipeline } from './pipeline.js';
import { PeerStatus } from './status.js';
import type { LocalMember } from './types.js';

/** Schemes a peer URL may have (etcd's types.NewURLs refuses the rest). */
const PEER_SCHEMES = new Set(['http:', 'https:', 'unix:', 'unixs:']);

/**
 * The URLs in an X-PeerURLs header (comma-separated, as etcd writes them), or undefined
 * when the header is missing or any of them is not a peer URL: a remote is only added
 * from URLs it can be dialled at.
 */
export function peerUrlsFromHeader(value: string | string[] | undefined): string[] | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  const urls = value.split(',');
  for (const u of urls) {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      return undefined;
    }
    if (!PEER_SCHEMES.has(parsed.protocol) || (parsed.host === '' && !parsed.protocol.startsWith('unix'))) return undefined;
  }
  return urls;
}

export interface RemoteContext {
  readonly local: LocalMember;
  readonly tls: TlsContext | undefined;
  readonly log: Logger;
  readonly onFailed: () => void;
  readonly onRemoved: () => void;
}

export class Remote {
  readonly status: PeerStatus;
  private readonly pipeline: Pipeline;

  constructor(
    readonly id: bigint,
    readonly urls: readonly string[],
    ctx: RemoteContext,
  ) {
    this.status = new PeerStatus(id, ctx.log);
    this.pipeline = new Pipeline(id, { ...ctx, status: this.status, urls: () => this.urls });
  }

  /** Queues m on the pipeline; false when its queue is full (the message is dropped). */
  send(m: Message): boolean {
    return this.pipeline.send(m);
  }

  stop(): void {
    this.pipeline.stop();
  }
}
