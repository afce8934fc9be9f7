// A deliberately broken "server" for proving the checker can fail: a gRPC proxy
// on the client port that forwards every etcd RPC byte-for-byte to a real member,
// except that it cheats in one of two ways:
//
//   stale-read  some linearizable single-key gets are answered from a cache of
//               an earlier response, under the newest header revision seen (a
//               read served without ReadIndex from a lagging replica); only once
//               a put to that key has been acknowledged since, so that every
//               cheat serves a value already overwritten
//   lost-write  some puts are acknowledged without being forwarded, with a
//               plausible new revision (an ack before the entry is durable)

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { LOADER_OPTIONS } from './client.js';
import { Rng } from './rng.js';

export type BrokenMode = 'stale-read' | 'lost-write';

export const BROKEN_MODES: readonly BrokenMode[] = ['stale-read', 'lost-write'];

const SERVICES = ['KV', 'Lease', 'Watch', 'Maintenance', 'Cluster'];

type Bytes = Buffer;
const identity = (b: Bytes): Bytes => b;

interface Header {
  cluster_id: string;
  member_id: string;
  revision: string;
  raft_term: string;
}

export class BrokenProxy {
  private readonly server = new grpc.Server();
  private readonly upstream: grpc.Client;
  private readonly rng: Rng;
  private readonly defs: protoLoader.PackageDefinition;
  /** the first response seen for each key: what stale reads serve */
  private readonly cache = new Map<string, Bytes>();
  /** cached keys a put was acknowledged for after their response was cached */
  private readonly overwritten = new Set<string>();
  private newest: Header | null = null;
  port = 0;
  /** how many responses were falsified */
  cheats = 0;

  constructor(
    private readonly target: string,
    private readonly mode: BrokenMode,
    seed: number,
  ) {
    this.upstream = new grpc.Client(target, grpc.credentials.createInsecure());
    this.rng = new Rng(seed);
    this.defs = protoLoader.loadSync('etcdserverpb/rpc.proto', LOADER_OPTIONS);
  }

  private method(service: string, name: string): protoLoader.MethodDefinition<object, object> {
    return (this.defs[`etcdserverpb.${service}`] as protoLoader.ServiceDefinition)[name] as protoLoader.MethodDefinition<object, object>;
  }

  async listen(): Promise<number> {
    for (const service of SERVICES) {
      const def = this.defs[`etcdserverpb.${service}`] as protoLoader.ServiceDefinition;
      for (const [name, m] of Object.entries(def)) {
        const type = m.requestStream ? (m.responseStream ? 'bidi' : 'clientStream') : m.responseStream ? 'serverStream' : 'unary';
        if (type === 'unary') {
          this.server.register<Bytes, Bytes>(m.path, ((call: grpc.ServerUnaryCall<Bytes, Bytes>, cb: grpc.sendUnaryData<Bytes>) => this.unary(service, name, m.path, call, cb)) as grpc.handleUnaryCall<Bytes, Bytes>, identity, identity, 'unary');
        } else if (type === 'bidi') {
          this.server.register<Bytes, Bytes>(m.path, ((call: grpc.ServerDuplexStream<Bytes, Bytes>) => this.bidi(m.path, call)) as grpc.handleBidiStreamingCall<Bytes, Bytes>, identity, identity, 'bidi');
        } else if (type === 'serverStream') {
          this.server.register<Bytes, Bytes>(m.path, ((call: grpc.ServerWritableStream<Bytes, Bytes>) => this.serverStream(m.path, call)) as grpc.handleServerStreamingCall<Bytes, Bytes>, identity, identity, 'serverStream');
        }
      }
    }
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
    return this.port;
  }

  private track(service: string, name: string, res: Bytes): void {
    if (service !== 'KV') return;
    const decoded = this.method(service, name).responseDeserialize(res) as { header?: Header };
    const h = decoded.header;
    if (h !== undefined && h !== null && (this.newest === null || Number(h.revision) > Number(this.newest.revision))) this.newest = h;
  }

  private unary(service: string, name: string, path: string, call: grpc.ServerUnaryCall<Bytes, Bytes>, cb: grpc.sendUnaryData<Bytes>): void {
    const forged = this.forge(service, name, call.request);
    if (forged !== null) {
      this.cheats++;
      cb(null, forged);
      return;
    }
    this.upstream.makeUnaryRequest(path, identity, identity, call.request, call.metadata, { deadline: call.getDeadline() }, (err, res) => {
      if (err || res === undefined) {
        cb(err ?? { code: grpc.status.INTERNAL, details: 'empty response' });
        return;
      }
      this.track(service, name, res);
      if (this.mode === 'stale-read' && service === 'KV' && name === 'Range') this.remember(call.request, res);
      if (this.mode === 'stale-read' && service === 'KV' && name === 'Put') this.superseded(call.request);
      cb(null, res);
    });
  }

  private remember(request: Bytes, response: Bytes): void {
    const req = this.method('KV', 'Range').requestDeserialize(request) as { key: Buffer; range_end: Buffer };
    if (req.range_end.length > 0) return;
    const res = this.method('KV', 'Range').responseDeserialize(response) as { kvs: unknown[] };
    const key = req.key.toString('latin1');
    if (res.kvs.length > 0 && !this.cache.has(key)) this.cache.set(key, response);
  }

  private superseded(request: Bytes): void {
    const key = (this.method('KV', 'Put').requestDeserialize(request) as { key: Buffer }).key.toString('latin1');
    if (this.cache.has(key)) this.overwritten.add(key);
  }

  /** A falsified response, or null to forward the request honestly. */
  private forge(service: string, name: string, request: Bytes): Bytes | null {
    if (service !== 'KV' || this.newest === null) return null;
    if (this.mode === 'stale-read' && name === 'Range') {
      const m = this.method('KV', 'Range');
      const req = m.requestDeserialize(request) as { key: Buffer; range_end: Buffer; serializable: boolean };
      const key = req.key.toString('latin1');
      const cached = this.cache.get(key);
      if (req.range_end.length > 0 || req.serializable || cached === undefined || !this.overwritten.has(key) || !this.rng.chance(0.3)) return null;
      const res = m.responseDeserialize(cached) as { header: Header };
      return m.responseSerialize({ ...res, header: this.newest });
    }
    if (this.mode === 'lost-write' && name === 'Put' && this.rng.chance(0.1)) {
      const revision = String(Number(this.newest.revision) + 1);
      this.newest = { ...this.newest, revision };
      return this.method('KV', 'Put').responseSerialize({ header: this.newest });
    }
    return null;
  }

  private bidi(path: string, call: grpc.ServerDuplexStream<Bytes, Bytes>): void {
    const up = this.upstream.makeBidiStreamRequest(path, identity, identity, call.metadata);
    call.on('data', (d: Bytes) => up.write(d));
    call.on('end', () => up.end());
    call.on('cancelled', () => up.cancel());
    up.on('data', (d: Bytes) => call.write(d));
    up.on('end', () => call.end());
    up.on('error', (e: grpc.ServiceError) => call.destroy(e));
  }

  private serverStream(path: string, call: grpc.ServerWritableStream<Bytes, Bytes>): void {
    const up = this.upstream.makeServerStreamRequest(path, identity, identity, call.request, call.metadata);
    call.on('cancelled', () => up.cancel());
    up.on('data', (d: Bytes) => call.write(d));
    up.on('end', () => call.end());
    up.on('error', (e: grpc.ServiceError) => call.destroy(e));
  }

  async close(): Promise<void> {
    this.upstream.close();
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
  }

  toString(): string {
    return `${this.mode} proxy 127.0.0.1:${this.port} -> ${this.target}`;
  }
}
