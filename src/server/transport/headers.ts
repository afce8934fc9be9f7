// The HTTP paths and headers of the peer protocol. Names follow etcd's rafthttp; the
// stream path is our own because the frames on it are not etcd's wire format.

import { idHex, parseIdHex } from '../ids.js';
import type { LocalMember } from './types.js';

/** GET <peer-url>/raft/stream/etcd-ts/<reader-id>: the peer writes its messages for us on the response. */
export const STREAM_PATH_PREFIX = '/raft/stream/etcd-ts/';
/** POST: one MsgSnap followed by the store's bytes. */
export const SNAPSHOT_PATH = '/raft/snapshot';
export const MEMBERS_PATH = '/members';
export const VERSION_PATH = '/version';

export const Header = {
  clusterId: 'x-etcd-cluster-id',
  from: 'x-server-from',
  to: 'x-raft-to',
  version: 'x-server-version',
} as const;

/** Headers every request from this member to peer `to` carries. */
export function peerHeaders(local: LocalMember, to: bigint): Record<string, string> {
  return {
    [Header.clusterId]: idHex(local.clusterId),
    [Header.from]: idHex(local.localId),
    [Header.to]: idHex(to),
    [Header.version]: local.version,
  };
}

/** An ID header's value, or undefined when absent or not hex. */
export function headerId(value: string | string[] | undefined): bigint | undefined {
  return typeof value === 'string' ? parseIdHex(value) : undefined;
}
