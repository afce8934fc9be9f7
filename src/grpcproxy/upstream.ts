// The proxy's client of the cluster: one grpc-js channel per --endpoints entry, every
// service's calls made generically from the service definitions our protos give the
// server (serviceDefinition), so requests the server decoded are re-encoded as they came.
// Unary calls go round-robin over the endpoints, as clientv3's balancer sends them;
// an endpoint that cannot be reached is passed over and the call tried on the next, and
// when none can be, the call waits for a member to come back (within its deadline).

import * as grpc from '@grpc/grpc-js';
import type { CallMetadata } from '../server/grpc/call.js';
import { serviceDefinition } from '../server/pb.js';

/** One method of one service, as serviceDefinition describes it. */
export type Method = grpc.MethodDefinition<object, object>;

/** The methods of `pkg.Service` by name, for calling upstream. */
export function methodsOf(service: string): Record<string, Method> {
  return serviceDefinition(service) as unknown as Record<string, Method>;
}

export interface UpstreamOptions {
  /** --endpoints as given: host:port, or a URL whose https:// scheme asks for TLS */
  endpoints: readonly string[];
  /** TLS toward the members (--cert/--key/--cacert, --insecure-skip-tls-verify); undefined: plain */
  tls: grpc.ChannelCredentials | undefined;
  /** --max-send-bytes / --max-recv-bytes */
  maxSendBytes: number;
  maxRecvBytes: number;
}

export interface Endpoint {
  /** host:port as dialled */
  readonly target: string;
  /** http(s)://host:port, for the member's /metrics */
  readonly url: string;
  readonly client: grpc.Client;
}

/**
 * The client metadata a call carries upstream: the auth token (as etcd's proxy forwards
 * it) and clientv3's `hasleader`, so a client that asked to fail without a leader does.
 */
export function forwardedMetadata(md: CallMetadata | undefined): grpc.Metadata {
  const out = new grpc.Metadata();
  if (md === undefined) return out;
  for (const key of ['token', 'hasleader']) {
    const v = md.get(key)[0];
    if (typeof v === 'string') out.set(key, v);
  }
  return out;
}

/** Methods that change nothing: retried on the next endpoint whatever became of the first try. */
const READ_ONLY = new Set([
  'Range', 'LeaseTimeToLive', 'LeaseLeases', 'MemberList', 'Status', 'Hash', 'HashKV',
  'Authenticate', 'UserGet', 'UserList', 'RoleGet', 'RoleList', 'Leader',
]);

/**
 * grpc-js's words for a call that never reached a member (nothing to undo, so any call
 * may be tried on the next endpoint): the connection could not be made.
 */
const NOT_SENT = /No connection established|ECONNREFUSED|connect E/;

/** How long a channel waits, at most, between attempts to reach its member again. */
const RECONNECT_MAX_MS = 1000;

/** How long one connectivity watch lasts before it is armed again (so none outlives its call by more). */
const WATCH_SLICE_MS = 1000;

function retryable(method: Method, err: grpc.ServiceError): boolean {
  if (err.code !== grpc.status.UNAVAILABLE) return false;
  const name = method.path.slice(method.path.lastIndexOf('/') + 1);
  return READ_ONLY.has(name) || NOT_SENT.test(err.details);
}

export class Upstream {
  readonly endpoints: readonly Endpoint[];
  private next = 0;

  constructor(opts: UpstreamOptions) {
    if (opts.endpoints.length === 0) throw new Error('no endpoints given (--endpoints)');
    const channelOptions: grpc.ChannelOptions = {
      'grpc.max_send_message_length': opts.maxSendBytes,
      'grpc.max_receive_message_length': opts.maxRecvBytes,
      // every endpoint its own channel: round robin and failover are ours
      'grpc.use_local_subchannel_pool': 1,
      // a member that comes back is found within a second; grpc-js's own ceiling is two
      // minutes, longer than any client waits (etcdctl gives a call five seconds)
      'grpc.max_reconnect_backoff_ms': RECONNECT_MAX_MS,
    };
    this.endpoints = opts.endpoints.map((e) => {
      const secure = /^(https|unixs):\/\//.test(e) || opts.tls !== undefined;
      const target = e.replace(/^[a-z]+:\/\//, '').replace(/\/$/, '');
      const creds = secure ? (opts.tls ?? grpc.credentials.createSsl()) : grpc.credentials.createInsecure();
      return { target, url: `${secure ? 'https' : 'http'}://${target}`, client: new grpc.Client(target, creds, channelOptions) };
    });
  }

  /**
   * The endpoints to try for one call: round robin from the next one, those whose
   * connection is known to be failing put last.
   */
  private order(): Endpoint[] {
    const n = this.endpoints.length;
    const start = this.next;
    this.next = (this.next + 1) % n;
    const rotated = Array.from({ length: n }, (_, i) => this.endpoints[(start + i) % n]!);
    const failing = (e: Endpoint) => e.client.getChannel().getConnectivityState(false) === grpc.connectivityState.TRANSIENT_FAILURE;
    return [...rotated.filter((e) => !failing(e)), ...rotated.filter(failing)];
  }

  /** One endpoint for a stream: the next in the round that is not failing. */
  pick(): Endpoint {
    return this.order()[0]!;
  }

  /**
   * A unary call, tried endpoint after endpoint while the failure allows it. When no
   * endpoint could be reached, the call waits for one to come back and goes round again,
   * as clientv3's calls (not fail-fast) wait: until the proxy's client goes away
   * (`cancelled`, which a client's deadline also fires) or `timeoutMs` bounds the whole
   * call. A call with neither fails at once.
   */
  unary<Res>(method: Method, req: object, md: grpc.Metadata, cancelled?: CancelSignal, timeoutMs?: number): Promise<Res> {
    const until = timeoutMs !== undefined ? Date.now() + timeoutMs : cancelled !== undefined ? Infinity : undefined;
    const options: grpc.CallOptions = until === undefined || until === Infinity ? {} : { deadline: until };
    return new Promise<Res>((resolve, reject) => {
      /** the i-th endpoint of a round over `order` */
      const attempt = (order: Endpoint[], i: number): void => {
        const call = order[i]!.client.makeUnaryRequest(
          method.path,
          method.requestSerialize,
          method.responseDeserialize,
          req,
          md,
          options,
          (err, res) => {
            cancelled?.off(abort);
            if (err === null) return resolve(res as Res);
            if (!retryable(method, err)) return reject(err);
            if (i + 1 < order.length) return attempt(order, i + 1);
            if (until === undefined || !NOT_SENT.test(err.details)) return reject(err);
            void this.anyReady(until, cancelled).then((ready) => (ready ? attempt(this.order(), 0) : reject(err)));
          },
        );
        const abort = (): void => call.cancel();
        cancelled?.on(abort);
      };
      attempt(this.order(), 0);
    });
  }

  /**
   * True once any endpoint's connection is READY (asking idle ones to connect); false
   * when `until` passes or the caller goes away first.
   */
  private anyReady(until: number, cancelled?: CancelSignal): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let settled = false;
      const settle = (ready: boolean): void => {
        if (settled) return;
        settled = true;
        cancelled?.off(gone);
        resolve(ready);
      };
      const gone = (): void => settle(false);
      cancelled?.on(gone);
      const watch = (channel: ReturnType<grpc.Client['getChannel']>): void => {
        if (settled) return;
        const state = channel.getConnectivityState(true);
        if (state === grpc.connectivityState.READY) return settle(true);
        if (Date.now() >= until) return settle(false);
        channel.watchConnectivityState(state, Math.min(until, Date.now() + WATCH_SLICE_MS), () => watch(channel));
      };
      for (const e of this.endpoints) watch(e.client.getChannel());
    });
  }

  /** A server-streaming call on one endpoint. */
  serverStream(method: Method, req: object, md: grpc.Metadata): grpc.ClientReadableStream<object> {
    return this.pick().client.makeServerStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, req, md, {});
  }

  /** A bidirectional stream on `endpoint` (default: the next one that is not failing). */
  bidi(method: Method, md: grpc.Metadata, endpoint = this.pick()): grpc.ClientDuplexStream<object, object> {
    return endpoint.client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, md, {});
  }

  close(): void {
    for (const e of this.endpoints) e.client.close();
  }
}

/** What a handler passes to hear that its client went away. */
export interface CancelSignal {
  on(fn: () => void): void;
  off(fn: () => void): void;
}

/** The cancel signal of a server call (our ServerCall emits 'cancelled'; the gateway's stand-ins may not). */
export function cancelSignalOf(call: unknown): CancelSignal | undefined {
  const emitter = call as { on?: unknown; off?: unknown };
  if (typeof emitter.on !== 'function' || typeof emitter.off !== 'function') return undefined;
  const ee = call as NodeJS.EventEmitter;
  return { on: (fn) => ee.on('cancelled', fn), off: (fn) => ee.off('cancelled', fn) };
}
