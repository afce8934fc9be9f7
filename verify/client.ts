// An etcd v3 gRPC client built on the project's protos (proto/etcdserverpb),
// independent of etcd-ts's server code. 64-bit integers travel as decimal strings
// (proto-loader `longs: String`); revisions are converted to numbers only after
// checking they are safe integers; lease and member IDs stay strings/bigints.

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import type { Compare, KeyValue, KvRequest, KvResponse, TxnRequestOp, TxnResponseOp, WatchEvent, WatchRequestParams } from './history.js';

const PROTO_DIR = fileURLToPath(new URL('../proto', import.meta.url));

/** Values longer than this are recorded as a digest (the NOSPACE filler writes big values). */
const MAX_RECORDED_VALUE = 256;

export const LOADER_OPTIONS: protoLoader.Options = {
  includeDirs: [PROTO_DIR],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

let cachedPackage: grpc.GrpcObject | null = null;
function etcdserverpb(): grpc.GrpcObject {
  if (cachedPackage === null) {
    const def = protoLoader.loadSync('etcdserverpb/rpc.proto', LOADER_OPTIONS);
    cachedPackage = (grpc.loadPackageDefinition(def) as { etcdserverpb: grpc.GrpcObject }).etcdserverpb;
  }
  return cachedPackage;
}

type ServiceCtor = new (target: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => grpc.Client;

/** An RPC failure: `code` is the gRPC status code. */
export class RpcError extends Error {
  constructor(
    readonly code: grpc.status,
    readonly details: string,
  ) {
    super(`${grpc.status[code] ?? code}: ${details}`);
  }
}

/**
 * True when the request provably never reached a server: grpc-js fails calls on
 * a channel with no connection before sending anything. Such failures are
 * dropped from the history instead of being recorded as maybe-applied.
 */
export function neverSent(err: unknown): boolean {
  return err instanceof RpcError && err.code === grpc.status.UNAVAILABLE && /No connection established|ECONNREFUSED/.test(err.details);
}

// --- wire shapes (only the fields we use) ------------------------------------

interface PbHeader {
  cluster_id: string;
  member_id: string;
  revision: string;
  raft_term: string;
}
interface PbKeyValue {
  key: Buffer;
  create_revision: string;
  mod_revision: string;
  version: string;
  value: Buffer;
  lease: string;
}
interface PbRangeResponse {
  header: PbHeader;
  kvs: PbKeyValue[];
  count: string;
}
interface PbResponseOp {
  response: 'response_range' | 'response_put' | 'response_delete_range' | 'response_txn';
  response_range?: PbRangeResponse;
  response_delete_range?: { deleted: string };
}
interface PbEvent {
  type: 'PUT' | 'DELETE';
  kv: PbKeyValue | null;
  prev_kv: PbKeyValue | null;
}
export interface PbWatchResponse {
  header: PbHeader | null;
  watch_id: string;
  created: boolean;
  canceled: boolean;
  compact_revision: string;
  cancel_reason: string;
  events: PbEvent[];
}
export interface Member {
  ID: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}
export interface StatusInfo {
  memberId: string;
  leader: string;
  raftIndex: number;
  raftTerm: number;
  revision: number;
  dbSize: number;
  errors: string[];
}

export function toRevision(s: string | number): number {
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new Error(`revision ${s} is not a safe integer`);
  return n;
}

function recordedValue(b: Buffer): string {
  if (b.length <= MAX_RECORDED_VALUE) return b.toString('latin1');
  return `${b.subarray(0, 32).toString('latin1')}#${b.length}`;
}

export function fromPbKv(kv: PbKeyValue): KeyValue {
  return {
    key: kv.key.toString('latin1'),
    value: recordedValue(kv.value),
    createRevision: toRevision(kv.create_revision),
    modRevision: toRevision(kv.mod_revision),
    version: toRevision(kv.version),
    lease: kv.lease,
  };
}

export function fromPbEvent(e: PbEvent): WatchEvent {
  if (e.kv === null) throw new Error('watch event without kv');
  return { type: e.type, kv: fromPbKv(e.kv), prevKv: e.prev_kv === null ? null : fromPbKv(e.prev_kv) };
}

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

/**
 * protobufjs writes a bytes field that is set, even when empty; Go's proto3
 * encoder leaves it out. etcd tells the two apart for range_end: present but
 * empty means "every key >= key". So an empty range end is not sent at all.
 */
const rangeEnd = (end: string): { range_end?: Buffer } => (end === '' ? {} : { range_end: bytes(end) });

function pbCompare(c: Compare): Record<string, unknown> {
  const field = { VERSION: 'version', CREATE: 'create_revision', MOD: 'mod_revision', VALUE: 'value', LEASE: 'lease' }[c.target];
  return {
    result: c.result,
    target: c.target,
    key: bytes(c.key),
    [field]: c.target === 'VALUE' ? bytes(String(c.operand)) : String(c.operand),
  };
}

function pbRequestOp(op: TxnRequestOp): Record<string, unknown> {
  switch (op.type) {
    case 'range':
      return { request_range: { key: bytes(op.key), ...rangeEnd(op.end) } };
    case 'put':
      return { request_put: { key: bytes(op.key), value: bytes(op.value), lease: op.lease } };
    case 'delete':
      return { request_delete_range: { key: bytes(op.key), ...rangeEnd(op.end) } };
  }
}

function fromPbResponseOp(r: PbResponseOp): TxnResponseOp {
  switch (r.response) {
    case 'response_range': {
      const rr = r.response_range!;
      return { type: 'range', kvs: rr.kvs.map(fromPbKv), count: toRevision(rr.count) };
    }
    case 'response_put':
      return { type: 'put' };
    case 'response_delete_range':
      return { type: 'delete', deleted: toRevision(r.response_delete_range!.deleted) };
    case 'response_txn':
      throw new Error('nested txn responses are not recorded');
  }
}

export interface ClientOptions {
  /** fail fast instead of waiting for a connection */
  waitForReady?: boolean;
}

export class EtcdClient {
  private readonly kv: grpc.Client;
  private readonly lease: grpc.Client;
  private readonly cluster: grpc.Client;
  private readonly maintenance: grpc.Client;
  private readonly watchService: grpc.Client;

  /** `endpoints`: one or more "127.0.0.1:port"; several are balanced round-robin. */
  constructor(readonly endpoints: string[]) {
    const pkg = etcdserverpb();
    const target = endpoints.length === 1 ? endpoints[0]! : `ipv4:${endpoints.join(',')}`;
    const options: grpc.ChannelOptions = {
      // a restarted member must be reachable again quickly
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 500,
      'grpc.min_reconnect_backoff_ms': 100,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      'grpc.max_send_message_length': 64 * 1024 * 1024,
      ...(endpoints.length > 1 ? { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) } : {}),
    };
    const creds = grpc.credentials.createInsecure();
    const make = (name: string): grpc.Client => new (pkg[name] as unknown as ServiceCtor)(target, creds, options);
    this.kv = make('KV');
    this.lease = make('Lease');
    this.cluster = make('Cluster');
    this.maintenance = make('Maintenance');
    this.watchService = make('Watch');
  }

  close(): void {
    for (const c of [this.kv, this.lease, this.cluster, this.maintenance, this.watchService]) c.close();
  }

  private unary<T>(client: grpc.Client, method: string, req: unknown, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const fn = (client as unknown as Record<string, (...a: unknown[]) => void>)[method]!;
      fn.call(client, req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res: T) => {
        if (err) reject(new RpcError(err.code, err.details));
        else resolve(res);
      });
    });
  }

  /** Executes a workload request and converts the response to the history's form. */
  async execute(input: KvRequest, timeoutMs: number): Promise<KvResponse> {
    switch (input.type) {
      case 'range': {
        const r = await this.unary<PbRangeResponse>(this.kv, 'Range', { key: bytes(input.key), ...rangeEnd(input.end), serializable: input.serializable }, timeoutMs);
        return { type: 'range', revision: toRevision(r.header.revision), kvs: r.kvs.map(fromPbKv), count: toRevision(r.count) };
      }
      case 'put': {
        const r = await this.unary<{ header: PbHeader }>(this.kv, 'Put', { key: bytes(input.key), value: bytes(input.value), lease: input.lease }, timeoutMs);
        return { type: 'put', revision: toRevision(r.header.revision) };
      }
      case 'delete': {
        const r = await this.unary<{ header: PbHeader; deleted: string }>(this.kv, 'DeleteRange', { key: bytes(input.key), ...rangeEnd(input.end) }, timeoutMs);
        return { type: 'delete', revision: toRevision(r.header.revision), deleted: toRevision(r.deleted) };
      }
      case 'txn': {
        const r = await this.unary<{ header: PbHeader; succeeded: boolean; responses: PbResponseOp[] }>(
          this.kv,
          'Txn',
          { compare: input.compare.map(pbCompare), success: input.success.map(pbRequestOp), failure: input.failure.map(pbRequestOp) },
          timeoutMs,
        );
        return { type: 'txn', revision: toRevision(r.header.revision), succeeded: r.succeeded, results: r.responses.map(fromPbResponseOp) };
      }
      case 'leaseGrant': {
        const r = await this.unary<{ header: PbHeader; ID: string; error: string }>(this.lease, 'LeaseGrant', { TTL: String(input.ttl), ID: input.id }, timeoutMs);
        if (r.error !== '') throw new RpcError(grpc.status.UNKNOWN, r.error);
        if (r.ID !== input.id) throw new Error(`lease grant returned ID ${r.ID}, asked for ${input.id}`);
        return { type: 'leaseGrant', revision: toRevision(r.header.revision) };
      }
      case 'leaseRevoke': {
        const r = await this.unary<{ header: PbHeader }>(this.lease, 'LeaseRevoke', { ID: input.id }, timeoutMs);
        return { type: 'leaseRevoke', revision: toRevision(r.header.revision) };
      }
    }
  }

  /** Puts raw bytes (the NOSPACE filler); returns the revision. */
  async putBytes(key: string, value: Buffer, timeoutMs: number): Promise<number> {
    const r = await this.unary<{ header: PbHeader }>(this.kv, 'Put', { key: bytes(key), value }, timeoutMs);
    return toRevision(r.header.revision);
  }

  async compact(revision: number, timeoutMs: number): Promise<void> {
    await this.unary(this.kv, 'Compact', { revision: String(revision), physical: false }, timeoutMs);
  }

  async status(timeoutMs: number): Promise<StatusInfo> {
    const r = await this.unary<{ header: PbHeader; leader: string; raftIndex: string; raftTerm: string; dbSize: string; errors: string[] }>(
      this.maintenance,
      'Status',
      {},
      timeoutMs,
    );
    return {
      memberId: r.header.member_id,
      leader: r.leader,
      raftIndex: Number(r.raftIndex),
      raftTerm: Number(r.raftTerm),
      revision: toRevision(r.header.revision),
      dbSize: Number(r.dbSize),
      errors: r.errors,
    };
  }

  async memberList(timeoutMs: number): Promise<Member[]> {
    const r = await this.unary<{ members: Member[] }>(this.cluster, 'MemberList', {}, timeoutMs);
    return r.members;
  }

  async memberAdd(peerURLs: string[], timeoutMs: number): Promise<{ member: Member; members: Member[] }> {
    return this.unary(this.cluster, 'MemberAdd', { peerURLs, isLearner: false }, timeoutMs);
  }

  async memberRemove(id: string, timeoutMs: number): Promise<void> {
    await this.unary(this.cluster, 'MemberRemove', { ID: id }, timeoutMs);
  }

  /** Lists active alarms (action GET). */
  async alarms(timeoutMs: number): Promise<{ memberID: string; alarm: string }[]> {
    const r = await this.unary<{ alarms: { memberID: string; alarm: string }[] }>(this.maintenance, 'Alarm', { action: 'GET', memberID: '0', alarm: 'NONE' }, timeoutMs);
    return r.alarms;
  }

  async disarm(memberID: string, alarm: string, timeoutMs: number): Promise<void> {
    await this.unary(this.maintenance, 'Alarm', { action: 'DEACTIVATE', memberID, alarm }, timeoutMs);
  }

  async defragment(timeoutMs: number): Promise<void> {
    await this.unary(this.maintenance, 'Defragment', {}, timeoutMs);
  }

  /** Opens a bidirectional watch stream. */
  watch(onResponse: (r: PbWatchResponse) => void, onEnd: (err: RpcError | null) => void): WatchStream {
    const call = (this.watchService as unknown as { Watch: () => grpc.ClientDuplexStream<unknown, PbWatchResponse> }).Watch();
    return new WatchStream(call, onResponse, onEnd);
  }
}

export class WatchStream {
  private ended = false;

  constructor(
    private readonly call: grpc.ClientDuplexStream<unknown, PbWatchResponse>,
    onResponse: (r: PbWatchResponse) => void,
    onEnd: (err: RpcError | null) => void,
  ) {
    call.on('data', onResponse);
    const finish = (err: RpcError | null): void => {
      if (this.ended) return;
      this.ended = true;
      onEnd(err);
    };
    call.on('error', (e: grpc.ServiceError) => finish(new RpcError(e.code, e.details)));
    call.on('end', () => finish(null));
  }

  create(p: WatchRequestParams): void {
    this.call.write({
      create_request: {
        key: bytes(p.key),
        ...rangeEnd(p.end),
        start_revision: String(p.startRevision),
        progress_notify: p.progressNotify,
        filters: p.filters,
        prev_kv: p.prevKv,
      },
    });
  }

  requestProgress(): void {
    if (!this.ended) this.call.write({ progress_request: {} });
  }

  close(): void {
    this.call.cancel();
  }
}
