// A gRPC client for the Lock and Election services (and the KV and Lease calls their
// tests need), built from proto/ with @grpc/proto-loader rather than the server's codec.

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import path from 'node:path';
import { repoRoot } from './harness.js';

const definition = protoLoader.loadSync(['etcdserverpb/rpc.proto', 'v3lockpb/v3lock.proto', 'v3electionpb/v3election.proto'], {
  includeDirs: [path.join(repoRoot, 'proto')],
  keepCase: true,
  longs: String,
  enums: Number,
  defaults: true,
  oneofs: true,
});
type Ctor = new (addr: string, creds: grpc.ChannelCredentials) => grpc.Client;
const pkg = grpc.loadPackageDefinition(definition) as unknown as {
  etcdserverpb: Record<string, Ctor>;
  v3lockpb: Record<string, Ctor>;
  v3electionpb: Record<string, Ctor>;
};

export interface Header {
  revision: string;
}
export interface Kv {
  key: Buffer;
  value: Buffer;
  create_revision: string;
  mod_revision: string;
  version: string;
  lease: string;
}
export interface LeaderKey {
  name: Buffer;
  key: Buffer;
  rev: string;
  lease: string;
}

/** A unary call in flight: its answer, and a way to walk away from it. */
export interface Pending<T> {
  result: Promise<T>;
  cancel(): void;
}

type UnaryFn = (req: object, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res: unknown) => void) => grpc.ClientUnaryCall;

export class ConcurrencyClient {
  private readonly kv: grpc.Client;
  private readonly leaseSvc: grpc.Client;
  private readonly lockSvc: grpc.Client;
  private readonly electionSvc: grpc.Client;

  constructor(endpoint: string) {
    const addr = endpoint.replace(/^https?:\/\//, '');
    const creds = grpc.credentials.createInsecure();
    this.kv = new pkg.etcdserverpb.KV!(addr, creds);
    this.leaseSvc = new pkg.etcdserverpb.Lease!(addr, creds);
    this.lockSvc = new pkg.v3lockpb.Lock!(addr, creds);
    this.electionSvc = new pkg.v3electionpb.Election!(addr, creds);
  }

  start<T>(client: grpc.Client, method: string, req: object, md = new grpc.Metadata()): Pending<T> {
    const fn = (client as unknown as Record<string, UnaryFn>)[method]!.bind(client);
    let call!: grpc.ClientUnaryCall;
    const result = new Promise<T>((resolve, reject) => {
      call = fn(req, md, (err, res) => (err ? reject(err) : resolve(res as T)));
    });
    // A test may look at a waiting call's outcome only after acting on it.
    result.catch(() => undefined);
    return { result, cancel: () => call.cancel() };
  }

  async grant(ttl: number, id = 0n): Promise<string> {
    const r = await this.start<{ ID: string }>(this.leaseSvc, 'LeaseGrant', { TTL: ttl, ID: id.toString() }).result;
    return r.ID;
  }

  revoke(id: string): Promise<unknown> {
    return this.start(this.leaseSvc, 'LeaseRevoke', { ID: id }).result;
  }

  async grantedTtl(id: string): Promise<number> {
    const r = await this.start<{ grantedTTL: string }>(this.leaseSvc, 'LeaseTimeToLive', { ID: id }).result;
    return Number(r.grantedTTL);
  }

  /** The keys under `prefix`, oldest first. */
  async keys(prefix: string): Promise<string[]> {
    const end = Buffer.from(prefix);
    end[end.length - 1]! += 1;
    const r = await this.start<{ kvs: Kv[] }>(this.kv, 'Range', { key: Buffer.from(prefix), range_end: end, sort_target: 2, sort_order: 1 }).result;
    return r.kvs.map((kv) => kv.key.toString());
  }

  lock(name: string, lease: string | number, md?: grpc.Metadata): Pending<{ header: Header; key: Buffer }> {
    return this.start(this.lockSvc, 'Lock', { name: Buffer.from(name), lease }, md);
  }

  unlock(key: Buffer | string): Promise<{ header: Header }> {
    return this.start<{ header: Header }>(this.lockSvc, 'Unlock', { key: Buffer.from(key) }).result;
  }

  campaign(name: string, lease: string | number, value: string): Pending<{ header: Header; leader: LeaderKey }> {
    return this.start(this.electionSvc, 'Campaign', { name: Buffer.from(name), lease, value: Buffer.from(value) });
  }

  proclaim(leader: LeaderKey | undefined, value: string): Promise<{ header: Header }> {
    return this.start<{ header: Header }>(this.electionSvc, 'Proclaim', { leader, value: Buffer.from(value) }).result;
  }

  leader(name: string): Promise<{ header: Header; kv: Kv }> {
    return this.start<{ header: Header; kv: Kv }>(this.electionSvc, 'Leader', { name: Buffer.from(name) }).result;
  }

  resign(leader: LeaderKey | undefined): Promise<{ header: Header }> {
    return this.start<{ header: Header }>(this.electionSvc, 'Resign', { leader }).result;
  }

  /** An Observe stream: each response in order, as it arrives. */
  observe(name: string, md = new grpc.Metadata()): Observation {
    const call = (this.electionSvc as unknown as Record<string, (req: object, md: grpc.Metadata) => grpc.ClientReadableStream<LeaderResponse>>)
      ['Observe']!.bind(this.electionSvc)({ name: Buffer.from(name) }, md);
    return new Observation(call);
  }

  close(): void {
    for (const c of [this.kv, this.leaseSvc, this.lockSvc, this.electionSvc]) c.close();
  }
}

export interface LeaderResponse {
  header: Header;
  kv: Kv;
}

export class Observation {
  private readonly received: LeaderResponse[] = [];
  private error: grpc.ServiceError | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly call: grpc.ClientReadableStream<LeaderResponse>) {
    call.on('data', (r: LeaderResponse) => {
      this.received.push(r);
      this.wake?.();
    });
    call.on('error', (err: grpc.ServiceError) => {
      this.error = err;
      this.wake?.();
    });
  }

  /** Resolves with the first `n` responses once they arrived; rejects if the stream failed first. */
  async first(n: number): Promise<LeaderResponse[]> {
    while (this.received.length < n) {
      if (this.error) throw this.error;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    return this.received.slice(0, n);
  }

  /** The stream's error, once it ends with one. */
  async failure(): Promise<grpc.ServiceError> {
    while (!this.error) await new Promise<void>((resolve) => (this.wake = resolve));
    return this.error;
  }

  cancel(): void {
    this.call.cancel();
  }
}
