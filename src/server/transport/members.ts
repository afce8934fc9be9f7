// The peer port's read-only endpoints: GET /members (the cluster as this member knows it)
// and GET /version, in etcd's JSON, plus the client a joining member uses to ask.

import type { Member } from '../membership.js';
import { parseIdHex } from '../ids.js';
import type { TlsContext } from '../tls.js';
import { peerGet } from './dial.js';
import { Header, MEMBERS_PATH, VERSION_PATH } from './headers.js';

/**
 * etcd's JSON for a member list. IDs are bare uint64 numbers, as etcd writes them; they are
 * written from the bigint directly because JSON.stringify cannot.
 */
export function membersJson(members: readonly Member[]): string {
  const one = (m: Member): string => {
    let s = `{"id":${m.id.toString()},"peerURLs":${JSON.stringify(m.peerUrls)}`;
    if (m.isLearner) s += ',"isLearner":true';
    if (m.name !== '') s += `,"name":${JSON.stringify(m.name)}`;
    if (m.clientUrls.length > 0) s += `,"clientURLs":${JSON.stringify(m.clientUrls)}`;
    return s + '}';
  };
  return `[${members.map(one).join(',')}]`;
}

export interface ClusterMember {
  id: bigint;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

/** Parses membersJson's output (or etcd's); throws with the reason on anything else. */
export function parseMembersJson(text: string): ClusterMember[] {
  // Quote the uint64 IDs before JSON.parse turns them into imprecise doubles. A `"id":`
  // with unescaped quotes cannot occur inside a JSON string, so only keys match.
  const quoted = text.replace(/([{,]\s*"id"\s*:\s*)(\d+)/g, '$1"$2"');
  const raw: unknown = JSON.parse(quoted);
  if (!Array.isArray(raw)) throw new Error('the member list is not a JSON array');
  return raw.map((r: unknown, i) => {
    const o = r as Record<string, unknown>;
    if (typeof o !== 'object' || o === null) throw new Error(`member ${i} is not an object`);
    if (typeof o.id !== 'string' || !/^\d{1,20}$/.test(o.id) || BigInt(o.id) >= 1n << 64n) throw new Error(`member ${i} has no valid id`);
    const strings = (v: unknown, what: string): string[] => {
      if (v === undefined) return [];
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error(`member ${i} has invalid ${what}`);
      return v as string[];
    };
    if (o.name !== undefined && typeof o.name !== 'string') throw new Error(`member ${i} has an invalid name`);
    return {
      id: BigInt(o.id),
      name: (o.name as string | undefined) ?? '',
      peerUrls: strings(o.peerURLs, 'peerURLs'),
      clientUrls: strings(o.clientURLs, 'clientURLs'),
      isLearner: o.isLearner === true,
    };
  });
}

/**
 * Join support: asks running members, one peer URL after the other, for the cluster ID
 * and member list (for --initial-cluster-state existing).
 */
export async function fetchClusterMembers(
  peerUrls: readonly string[],
  tls: TlsContext | undefined,
  timeoutMs: number,
): Promise<{ clusterId: bigint; members: ClusterMember[] }> {
  const failures: string[] = [];
  for (const url of peerUrls) {
    try {
      return await fetchFrom(url, tls, timeoutMs);
    } catch (err) {
      failures.push(`${url}: ${(err as Error).message}`);
    }
  }
  throw new Error(
    `could not retrieve cluster information from the given URLs${failures.length > 0 ? ` (${failures.join('; ')})` : ''}`,
  );
}

async function fetchFrom(url: string, tls: TlsContext | undefined, timeoutMs: number): Promise<{ clusterId: bigint; members: ClusterMember[] }> {
  const res = await peerGet(url, MEMBERS_PATH, tls, timeoutMs, 16 * 1024 * 1024);
  if (res.status !== 200) throw new Error(`unexpected status ${res.status}`);
  const header = res.headers[Header.clusterId];
  const clusterId = typeof header === 'string' ? parseIdHex(header) : undefined;
  if (clusterId === undefined) throw new Error(`the answer has no valid ${Header.clusterId} header`);
  try {
    return { clusterId, members: parseMembersJson(res.body) };
  } catch (err) {
    throw new Error(`bad member list: ${(err as Error).message}`);
  }
}

/**
 * A member's server version from GET /version on its peer URLs (the first that answers),
 * as etcd's leader asks when it decides the cluster version; undefined if none answers.
 */
export async function fetchServerVersion(peerUrls: readonly string[], tls: TlsContext | undefined, timeoutMs: number): Promise<string | undefined> {
  for (const url of peerUrls) {
    try {
      const res = await peerGet(url, VERSION_PATH, tls, timeoutMs, 4096);
      const v = res.status === 200 ? (JSON.parse(res.body) as { etcdserver?: unknown }).etcdserver : undefined;
      if (typeof v === 'string') return v;
    } catch {
      // an unreachable or garbled peer URL: try the next
    }
  }
  return undefined;
}
