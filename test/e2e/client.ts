// An independent gRPC client for tests, built from proto/ with @grpc/proto-loader
// (not from the server's own codec), so a wire mistake on either side shows.

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import path from 'node:path';
import { repoRoot } from './harness.js';

const definition = protoLoader.loadSync(['etcdserverpb/rpc.proto'], {
  includeDirs: [path.join(repoRoot, 'proto')],
  keepCase: true,
  longs: String,
  enums: Number,
  defaults: true,
  oneofs: true,
});
const pkg = grpc.loadPackageDefinition(definition) as unknown as {
  etcdserverpb: Record<string, new (addr: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => grpc.Client>;
};

type Unary = (
  req: object,
  md: grpc.Metadata,
  options: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: Record<string, unknown>) => void,
) => void;

export class EtcdClient {
  readonly kv: grpc.Client;
  readonly watch: grpc.Client;
  readonly lease: grpc.Client;
  readonly maintenance: grpc.Client;

  private readonly addr: string;

  /** `options`: grpc-js channel options (a keepalive, a message size limit) for every service's channel */
  constructor(endpoint: string, options: grpc.ChannelOptions = {}) {
    const addr = endpoint.replace(/^https?:\/\//, '');
    this.addr = addr;
    const creds = grpc.credentials.createInsecure();
    this.kv = new pkg.etcdserverpb.KV!(addr, creds, options);
    this.watch = new pkg.etcdserverpb.Watch!(addr, creds, options);
    this.lease = new pkg.etcdserverpb.Lease!(addr, creds, options);
    this.maintenance = new pkg.etcdserverpb.Maintenance!(addr, creds, options);
  }

  call<T = Record<string, unknown>>(client: grpc.Client, method: string, req: object, md = new grpc.Metadata(), options: grpc.CallOptions = {}): Promise<T> {
    const fn = (client as unknown as Record<string, Unary>)[method]!.bind(client);
    return new Promise((resolve, reject) => fn(req, md, options, (err, res) => (err ? reject(err) : resolve(res as T))));
  }

  /** A put; with `timeoutMs`, it fails with DEADLINE_EXCEEDED if no answer comes by then (as etcdctl's --command-timeout). */
  put(key: string, value: string, timeoutMs?: number): Promise<Record<string, unknown>> {
    const options = timeoutMs === undefined ? {} : { deadline: Date.now() + timeoutMs };
    return this.call(this.kv, 'Put', { key: Buffer.from(key), value: Buffer.from(value) }, new grpc.Metadata(), options);
  }

  async get(key: string): Promise<string | undefined> {
    const r = await this.call<{ kvs: Array<{ value: Buffer }> }>(this.kv, 'Range', { key: Buffer.from(key) });
    return r.kvs[0]?.value.toString();
  }

  /** A client of the Auth service on the same endpoint (the caller closes it). */
  authClient(): grpc.Client {
    return new pkg.etcdserverpb.Auth!(this.addr, grpc.credentials.createInsecure());
  }

  close(): void {
    for (const c of [this.kv, this.watch, this.lease, this.maintenance]) c.close();
  }
}

/** A gRPC client that authenticates and passes its token as etcd clients do (the `token` metadata key). */
export class AuthedClient {
  private readonly c: EtcdClient;
  private readonly auth: grpc.Client;

  constructor(endpoint: string) {
    this.c = new EtcdClient(endpoint);
    this.auth = this.c.authClient();
  }

  async authenticate(name: string, password: string): Promise<string> {
    const r = await this.c.call<{ token: string }>(this.auth, 'Authenticate', { name, password });
    return r.token;
  }

  async put(token: string, key: string, value: string): Promise<void> {
    await this.c.call(this.c.kv, 'Put', { key: Buffer.from(key), value: Buffer.from(value) }, withToken(token));
  }

  async get(token: string, key: string): Promise<string | undefined> {
    const r = await this.c.call<{ kvs: Array<{ value: Buffer }> }>(this.c.kv, 'Range', { key: Buffer.from(key) }, withToken(token));
    return r.kvs[0]?.value.toString();
  }

  async txn(token: string, req: object): Promise<void> {
    await this.c.call(this.c.kv, 'Txn', req, withToken(token));
  }

  close(): void {
    this.auth.close();
    this.c.close();
  }
}

export function withToken(token: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('token', token);
  return md;
}
