// The etcd API protos loaded once through protobufjs (from the prebuilt
// proto/etcd-api.json), and grpc-js service definitions whose (de)serializers call
// protobufjs directly: decoded requests keep protobufjs' representation (Long for 64-bit
// integers, Buffer for bytes) and responses are plain objects that protobufjs encodes.
// Request bytes pass a strict wire check first (wire-check.ts), so that malformed ones
// are refused instead of misread.

import type { ServiceDefinition } from '@grpc/grpc-js';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
// light: no .proto parser, which the prebuilt descriptor makes unneeded
import protobuf from 'protobufjs/light.js';
import Long from 'long';
import { compileWireCheck, MAX_NESTING_DEPTH } from './wire-check.js';

// protobufjs stops at 100 nested messages, but a txn nests two per level and etcd takes
// 128 levels (--max-txn-ops 128). Requests are held to MAX_NESTING_DEPTH by the wire
// check; the margin covers what wraps them (InternalRaftRequest) and the responses,
// which nest a header and key-values inside the deepest TxnResponse.
protobuf.util.recursionLimit = MAX_NESTING_DEPTH + 16;
protobuf.Reader.recursionLimit = MAX_NESTING_DEPTH + 16;

// Compiled code runs from dist/src/server, sources from src/server: find proto/ from either.
const here = path.dirname(fileURLToPath(import.meta.url));
const protoCandidates = [path.resolve(here, '../../proto'), path.resolve(here, '../../../proto')];

/**
 * The protos as the descriptor scripts/proto-descriptor.ts generated from the .proto
 * files at build time: parsing the .proto text here cost every member start a twentieth
 * of a second of CPU and protobufjs' parser modules.
 */
function loadRoot(): protobuf.Root {
  const file = protoCandidates.map((d) => path.join(d, 'etcd-api.json')).find((f) => existsSync(f));
  if (file === undefined) {
    throw new Error(`cannot find etcd-ts's proto/etcd-api.json (looked in ${protoCandidates.join(', ')}); run "npm run build"`);
  }
  const root = protobuf.Root.fromJSON(JSON.parse(readFileSync(file, 'utf8')) as protobuf.INamespace);
  root.resolveAll();
  return root;
}

export const root = loadRoot();

export function type(name: string): protobuf.Type {
  return root.lookupType(name);
}

export const InternalRaftRequest = type('etcdserverpb.InternalRaftRequest');
/** etcd's v2 request; etcd 3.4 proposes it bare (not in an InternalRaftRequest) for publish and the cluster version. */
export const V2RequestType = type('etcdserverpb.Request');

export const WalMetadata = type('etcdserverpb.Metadata');

/**
 * The bytes each request InternalRaftRequest can carry was decoded from at the gRPC edge,
 * by the decoded message: a proposal of that very message puts them in its entry as they
 * came (raft-request.ts) rather than encoding it again. A message changed after decoding
 * is no longer what its bytes say: handlers propose the client's message untouched or a
 * new one.
 */
const decodedFrom = new WeakMap<object, Uint8Array>();
const proposable = new Set(InternalRaftRequest.fieldsArray.map((f) => f.resolvedType));

export function clientBytes(message: object): Uint8Array | undefined {
  return decodedFrom.get(message);
}

/** Builds a grpc-js service definition for `pkg.Service` from the loaded protos. */
export function serviceDefinition(fullName: string): ServiceDefinition {
  const svc = root.lookupService(fullName);
  const def: Record<string, ServiceDefinition[string]> = {};
  for (const method of svc.methodsArray) {
    method.resolve();
    const req = method.resolvedRequestType!;
    const res = method.resolvedResponseType!;
    const check = compileWireCheck(req);
    const keepBytes = proposable.has(req);
    def[method.name] = {
      path: `/${fullName}/${method.name}`,
      requestStream: method.requestStream === true,
      responseStream: method.responseStream === true,
      requestSerialize: (v: object) => Buffer.from(req.encode(v).finish()),
      requestDeserialize: (b: Buffer) => {
        check(b);
        const message = req.decode(b);
        if (keepBytes) decodedFrom.set(message, b);
        return message;
      },
      responseSerialize: (v: object) => {
        const bytes = res.encode(v).finish();
        return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      },
      responseDeserialize: (b: Buffer) => res.decode(b),
      originalName: method.name,
    };
  }
  return def as ServiceDefinition;
}

// ---- 64-bit integers ----
// protobufjs decodes int64/uint64 as Long (or number when small and Long is absent);
// etcd-ts uses number for revisions/TTLs and bigint for IDs.

export type Int64 = Long | number | string | null | undefined;

export function toNumber(v: Int64): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return Number(v);
  return v.toNumber();
}

export function toBigInt(v: Int64, unsigned = false): bigint {
  if (v === null || v === undefined) return 0n;
  if (typeof v === 'number') return BigInt(v);
  if (typeof v === 'string') return BigInt(v);
  const b = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
  return unsigned || !v.unsigned ? (unsigned ? b : BigInt.asIntN(64, b)) : b;
}

/** An int64 field value for protobufjs encoding (which does not take bigint). */
export function int64(v: bigint): Long {
  const u = BigInt.asUintN(64, v);
  return Long.fromBits(Number(u & 0xffff_ffffn) | 0, Number(u >> 32n) | 0, false);
}

export function uint64(v: bigint): Long {
  const u = BigInt.asUintN(64, v);
  return Long.fromBits(Number(u & 0xffff_ffffn) | 0, Number(u >> 32n) | 0, true);
}
