// etcd's discovery service protocol (etcd 3.4's v2discovery), by which a new member finds
// the others of a cluster being bootstrapped: a directory in a discovery etcd's v2 keys
// API (an etcd or etcd-ts with --enable-v2, where the URL is .../v2/keys/<dir>, or a
// public service such as discovery.etcd.io, which maps /<token> to a directory of its own)
// holds `_config/size` and one key per member, named by its member ID and holding its
// `name=peer-url` entries. Keys are told apart by their last segment only, as etcd does:
// a service may answer with keys under a directory of its own naming. Each member registers itself, then waits until
// `size` members have; the first `size` to register, in the order the discovery etcd
// created their keys, are the initial cluster. A member that comes after them finds the
// cluster full.

import http from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import { formatDuration } from '../wal/logger.js';
import { idHex } from './ids.js';

/** etcd's errors, by their text (etcdmain chooses its hints by them). */
export const DiscoveryErrors = {
  invalidUrl: 'discovery: invalid URL',
  badSizeKey: 'discovery: size key is bad',
  sizeNotFound: 'discovery: size key not found',
  duplicateId: 'discovery: found duplicate id',
  duplicateName: 'discovery: found duplicate name',
  fullCluster: 'discovery: cluster is full',
  badEndpoint: 'discovery: bad discovery endpoint',
} as const;

/** A discovery that cannot succeed: etcd's DiscoveryError ("failed to join discovery cluster (...)"). */
export class DiscoveryError extends Error {
  override name = 'DiscoveryError';
  /** one of DiscoveryErrors, or the discovery etcd's own error */
  constructor(readonly reason: string) {
    super(`failed to join discovery cluster (${reason})`);
  }
}

/** etcd's client.DefaultRequestTimeout, for every request but the watches. */
const REQUEST_TIMEOUT_MS = 5000;
/** Retries back off 2^n seconds, n at most 8 (etcd's maxExpoentialRetries). */
const MAX_BACKOFF_EXPONENT = 8;

export interface DiscoveryOptions {
  /** the --discovery URL as given: its path is the cluster's directory */
  readonly url: string;
  readonly memberId: bigint;
  /** this member's `name=peer-url,...` entries, sorted, as it registers them */
  readonly self: string;
  readonly log: Logger;
}

interface V2Node {
  key: string;
  value?: string;
  dir?: boolean;
  nodes?: V2Node[];
  createdIndex: number;
  modifiedIndex: number;
}

/** An answer of the v2 keys API: the node, or its error code, and the store's index (X-Etcd-Index). */
type V2Answer = { ok: true; node: V2Node; index: number } | { ok: false; status: number; errorCode: number | undefined; text: string };

/** The discovery etcd could not be reached or answered with something else than its API: retried. */
class Unreachable extends Error {}

/** v2 error codes the protocol tells apart. */
const KEY_NOT_FOUND = 100;
const NODE_EXISTS = 105;
const EVENT_INDEX_CLEARED = 401;

/** Registers this member and returns the initial cluster (`name=url,...`) once it is complete. */
export async function joinDiscoveryCluster(opts: DiscoveryOptions): Promise<string> {
  return new Discovery(opts).join();
}

class Discovery {
  private readonly base: URL;
  /** the discovery URL's path: the cluster's directory, as requested */
  private readonly dir: string;
  private retries = 0;

  constructor(private readonly opts: DiscoveryOptions) {
    let u: URL;
    try {
      u = new URL(opts.url);
    } catch {
      throw new DiscoveryError(DiscoveryErrors.invalidUrl);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new DiscoveryError(DiscoveryErrors.invalidUrl);
    this.base = new URL(u.origin);
    this.dir = u.pathname.replace(/\/+$/, '');
  }

  private get selfKey(): string {
    return `${this.dir}/${idHex(this.opts.memberId)}`;
  }

  async join(): Promise<string> {
    await this.checkCluster();
    await this.createSelf();
    const { nodes, size, index } = await this.checkCluster();
    const all = await this.waitNodes(nodes, size, index);
    return nodesToCluster(all, size);
  }

  /** The registered members (first `size` of them when more), the size, and the index to watch from. */
  private async checkCluster(): Promise<{ nodes: V2Node[]; size: number; index: number }> {
    for (;;) {
      try {
        return await this.readCluster();
      } catch (err) {
        if (!(err instanceof Unreachable)) throw err;
        this.opts.log.warn({ 'discovery-url': this.opts.url, error: err.message }, 'failed to get from discovery server');
        await this.backoff('cluster status check');
      }
    }
  }

  private async readCluster(): Promise<{ nodes: V2Node[]; size: number; index: number }> {
    const sizeAnswer = await this.request('GET', `${this.dir}/_config/size`);
    if (!sizeAnswer.ok) {
      if (sizeAnswer.errorCode === KEY_NOT_FOUND) throw new DiscoveryError(DiscoveryErrors.sizeNotFound);
      throw new DiscoveryError(v2ErrorText(sizeAnswer));
    }
    const size = Number(sizeAnswer.node.value);
    if (!/^\d+$/.test(sizeAnswer.node.value ?? '') || !Number.isSafeInteger(size)) throw new DiscoveryError(DiscoveryErrors.badSizeKey);
    const dirAnswer = await this.request('GET', this.dir);
    if (!dirAnswer.ok) throw new DiscoveryError(v2ErrorText(dirAnswer));
    const nodes = (dirAnswer.node.nodes ?? []).filter((n) => baseName(n.key) !== '_config').sort((a, b) => a.createdIndex - b.createdIndex);
    const self = baseName(this.selfKey);
    for (let i = 0; i < nodes.length; i++) {
      if (baseName(nodes[i]!.key) === self) break;
      if (i >= size - 1) throw new DiscoveryError(DiscoveryErrors.fullCluster);
    }
    return { nodes, size, index: dirAnswer.index };
  }

  /** Creates this member's key (never overwrites one), then waits until the discovery etcd shows it. */
  private async createSelf(): Promise<void> {
    const created = await this.request('PUT', `${this.selfKey}?prevExist=false`, this.opts.self);
    if (!created.ok) {
      if (created.errorCode === NODE_EXISTS) throw new DiscoveryError(DiscoveryErrors.duplicateId);
      throw new DiscoveryError(v2ErrorText(created));
    }
    await this.request('GET', `${this.selfKey}?wait=true&waitIndex=${created.node.createdIndex}`, undefined, 0);
  }

  private async waitNodes(found: readonly V2Node[], size: number, index: number): Promise<V2Node[]> {
    const all = found.slice(0, size);
    const self = baseName(this.selfKey);
    for (const n of all) {
      if (baseName(n.key) === self) this.opts.log.info({ 'discovery-url': this.opts.url, self }, 'found self from discovery server');
      else this.opts.log.info({ 'discovery-url': this.opts.url, peer: baseName(n.key) }, 'found peer from discovery server');
    }
    let after = index;
    while (all.length < size) {
      this.opts.log.info({ 'discovery-url': this.opts.url, 'found-peers': all.length, 'needed-peers': size - all.length }, 'found peers from discovery server; waiting for more');
      let event: V2Answer;
      try {
        // no timeout: the other members may start minutes later
        event = await this.request('GET', `${this.dir}?wait=true&recursive=true&waitIndex=${after + 1}`, undefined, 0);
      } catch (err) {
        if (!(err instanceof Unreachable)) throw err;
        await this.backoff('waiting for other nodes');
        const again = await this.checkCluster();
        return this.waitNodes(again.nodes, again.size, again.index);
      }
      if (!event.ok) {
        // the events since `after` are gone from the discovery etcd's history: read the directory again
        if (event.errorCode === EVENT_INDEX_CLEARED) {
          const again = await this.checkCluster();
          return this.waitNodes(again.nodes, again.size, again.index);
        }
        throw new DiscoveryError(v2ErrorText(event));
      }
      after = event.node.modifiedIndex;
      // a member registering: a key that is not _config or under it, nor one already seen
      const name = baseName(event.node.key);
      if (name === '_config' || baseName(parentOf(event.node.key)) === '_config' || all.some((n) => baseName(n.key) === name)) continue;
      this.opts.log.info({ 'discovery-url': this.opts.url, peer: name }, 'found peer from discovery server');
      all.push(event.node);
    }
    this.opts.log.info({ 'discovery-url': this.opts.url, 'found-peers': all.length }, 'found all needed peers from discovery server');
    return all;
  }

  private async backoff(reason: string): Promise<void> {
    this.retries++;
    const ms = 1000 * 2 ** Math.min(this.retries, MAX_BACKOFF_EXPONENT);
    this.opts.log.info({ url: this.opts.url, reason, backoff: formatDuration(ms / 1000) }, 'retry connecting to discovery service');
    await new Promise((r) => setTimeout(r, ms));
  }

  /** One request to the v2 keys API; `timeoutMs` 0 waits as long as the answer takes. */
  private request(method: 'GET' | 'PUT', pathAndQuery: string, value?: string, timeoutMs = REQUEST_TIMEOUT_MS): Promise<V2Answer> {
    const url = new URL(pathAndQuery, this.base);
    const body = value === undefined ? undefined : `value=${encodeURIComponent(value)}`;
    const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) };
    return new Promise((resolve, reject) => {
      const req = (url.protocol === 'https:' ? https : http).request(url, { method, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(new Unreachable(err.message)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            // not the keys API answering (a proxy's error page, a wrong URL): etcd's
            // client.ErrInvalidJSON; but a watch cut short by a stopping service is retried
            if ((res.statusCode ?? 0) >= 500 || (timeoutMs === 0 && text === '')) reject(new Unreachable(`${res.statusCode} ${res.statusMessage ?? ''}`.trim()));
            else reject(new DiscoveryError(DiscoveryErrors.badEndpoint));
            return;
          }
          const answer = json as { node?: V2Node; errorCode?: number };
          if (res.statusCode !== undefined && res.statusCode < 300 && answer.node !== undefined) {
            resolve({ ok: true, node: answer.node, index: Number(res.headers['x-etcd-index'] ?? 0) });
          } else if (answer.errorCode === undefined && (res.statusCode ?? 0) >= 500) {
            reject(new Unreachable(`${res.statusCode} ${text.trim()}`));
          } else {
            resolve({ ok: false, status: res.statusCode ?? 0, errorCode: answer.errorCode, text: text.trim() });
          }
        });
      });
      if (timeoutMs > 0) req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (err) => reject(new Unreachable(err.message)));
      req.end(body);
    });
  }
}

/** etcd's client error text: "100: Key not found (/x) [7]". */
function v2ErrorText(a: Extract<V2Answer, { ok: false }>): string {
  try {
    const e = JSON.parse(a.text) as { errorCode?: number; message?: string; cause?: string; index?: number };
    if (e.errorCode !== undefined) return `${e.errorCode}: ${e.message ?? ''} (${e.cause ?? ''}) [${e.index ?? 0}]`;
  } catch {
    // not JSON: the status tells
  }
  return `unexpected answer from the discovery server: ${a.status} ${a.text}`;
}

/** The initial cluster from the registered entries; refuses one where two members share a name. */
function nodesToCluster(nodes: readonly V2Node[], size: number): string {
  const cluster = nodes.map((n) => n.value ?? '').join(',');
  const names = new Set<string>();
  for (const entry of cluster.split(',')) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new DiscoveryError(DiscoveryErrors.invalidUrl);
    names.add(entry.slice(0, eq));
  }
  if (names.size !== size) throw new DiscoveryError(DiscoveryErrors.duplicateName);
  return cluster;
}

function baseName(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}

function parentOf(key: string): string {
  return key.slice(0, key.lastIndexOf('/'));
}
