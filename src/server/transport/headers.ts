// The HTTP paths and headers of etcd 3.4's peer protocol (rafthttp), and the checks a
// member makes on every raft request before it reads a byte of the body.

import { idHex, parseIdHex } from '../ids.js';
import type { StreamType } from './stream-codec.js';
import type { LocalMember } from './types.js';

/** POST: one raft message (the pipeline, used while no stream is up). */
export const RAFT_PATH = '/raft';
/** GET: answers {"OK":true,"Now":...}; peers measure their round trip with it. */
export const PROBING_PATH = '/raft/probing';
/** POST: one MsgSnap followed by the bbolt database. */
export const SNAPSHOT_PATH = '/raft/snapshot';
/** GET <prefix><type endpoint>/<reader-id>: the peer writes its messages for us on the response. */
export const STREAM_PATH_PREFIX = '/raft/stream/';
export const MEMBERS_PATH = '/members';
export const VERSION_PATH = '/version';

/** The path segment of each stream type (msgappv2 is served at .../msgapp, as etcd names it). */
export const STREAM_ENDPOINT: Readonly<Record<StreamType, string>> = { message: 'message', msgappv2: 'msgapp' };

export function streamTypeOf(endpoint: string): StreamType | undefined {
  return endpoint === 'message' ? 'message' : endpoint === 'msgapp' ? 'msgappv2' : undefined;
}

/** How etcd's logs name a stream. */
export function streamName(t: StreamType): string {
  return t === 'message' ? 'stream Message' : 'stream MsgApp v2';
}

/** etcd 3.4's version.MinClusterVersion: the oldest cluster this member can join. */
export const MIN_CLUSTER_VERSION = '3.0.0';

export const Header = {
  clusterId: 'x-etcd-cluster-id',
  from: 'x-server-from',
  to: 'x-raft-to',
  version: 'x-server-version',
  minClusterVersion: 'x-min-cluster-version',
  peerUrls: 'x-peerurls',
} as const;

/** Headers of every request this member sends a peer (etcd's createPostRequest). */
export function postHeaders(local: LocalMember, contentType: string): Record<string, string> {
  const h: Record<string, string> = {
    'content-type': contentType,
    [Header.from]: idHex(local.localId),
    [Header.version]: local.version,
    [Header.minClusterVersion]: MIN_CLUSTER_VERSION,
    [Header.clusterId]: idHex(local.clusterId),
  };
  if (local.peerUrls.length > 0) h[Header.peerUrls] = local.peerUrls.join(',');
  return h;
}

/** Headers of a stream request to peer `to`. */
export function streamHeaders(local: LocalMember, to: bigint): Record<string, string> {
  const { 'content-type': _, ...rest } = postHeaders(local, '');
  return { ...rest, [Header.to]: idHex(to) };
}

/** An ID header's value, or undefined when absent or not hex. */
export function headerId(value: string | string[] | undefined): bigint | undefined {
  return typeof value === 'string' ? parseIdHex(value) : undefined;
}

/** The body etcd answers (412) for each refusal, which the sending side recognises. */
export const Refusal = {
  incompatibleVersion: 'incompatible version',
  clusterIdMismatch: 'cluster ID mismatch',
} as const;
export type Refusal = (typeof Refusal)[keyof typeof Refusal];

type Headers = Record<string, string | string[] | undefined>;

/**
 * etcd's checkClusterCompatibilityFromHeader: the sender's server version must not be
 * older (major.minor) than our minimum cluster version, its minimum cluster version not
 * newer than our server version, and its cluster ID ours. Missing versions mean 2.0.0.
 * Returns the refusal with the reason to log, or undefined.
 */
export function checkCompatibility(h: Headers, local: LocalMember): { refusal: Refusal; reason: string } | undefined {
  const remoteServer = versionHeader(h[Header.version]);
  const remoteMin = versionHeader(h[Header.minClusterVersion]);
  const localServer = majorMinor(local.version)!;
  const localMin = majorMinor(MIN_CLUSTER_VERSION)!;
  const name = String(h[Header.from] ?? '');
  if (remoteServer === undefined || remoteMin === undefined) {
    return { refusal: Refusal.incompatibleVersion, reason: `unparsable version headers from ${name}` };
  }
  if (compare(remoteServer, localMin) < 0) {
    return { refusal: Refusal.incompatibleVersion, reason: `remote version is too low: remote[${name}]=${String(h[Header.version])}, local=${local.version}` };
  }
  if (compare(remoteMin, localServer) > 0) {
    return { refusal: Refusal.incompatibleVersion, reason: `local version is too low: remote[${name}]=${String(h[Header.version])}, local=${local.version}` };
  }
  if (h[Header.clusterId] !== idHex(local.clusterId)) {
    return { refusal: Refusal.clusterIdMismatch, reason: `cluster ID mismatch (got ${String(h[Header.clusterId] ?? '')} want ${idHex(local.clusterId)})` };
  }
  return undefined;
}

type MajorMinor = readonly [number, number];

function versionHeader(v: string | string[] | undefined): MajorMinor | undefined {
  if (v === undefined || v === '') return [2, 0];
  return typeof v === 'string' ? majorMinor(v) : undefined;
}

function majorMinor(v: string): MajorMinor | undefined {
  const m = /^(\d+)\.(\d+)\.\d+(?:[-+][0-9A-Za-z.+-]*)?$/.exec(v);
  return m === null ? undefined : [Number(m[1]), Number(m[2])];
}

function compare(a: MajorMinor, b: MajorMinor): number {
  return a[0] !== b[0] ? a[0] - b[0] : a[1] - b[1];
}
