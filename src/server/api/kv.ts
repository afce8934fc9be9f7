// etcdserverpb.KV: Range, Put, DeleteRange, Txn, Compact.

import { type ServiceImplementation, ServerCall } from '../grpc/call.js';
import type { EncodedMessage } from '../grpc/framing.js';
import { RangeResponseEncoder } from './range-encoder.js';
import {
  type MvccStore,
  type RangeRequest,
  type TxnRequest,
  type TxnResponse,
  checkDeleteRangeRequest,
  checkPutRequest,
  checkRangeRequest,
  checkTxnRequest,
  isSliceable,
  isTxnReadonly,
} from '../../mvcc/index.js';
import {
  type PbDeleteRangeRequest,
  type PbPutRequest,
  type PbRangeRequest,
  type PbTxnRequest,
  deleteRangeFromPb,
  deleteRespToPb,
  putFromPb,
  putRespToPb,
  rangeFromPb,
  rangeRespToPb,
  txnFromPb,
  txnRespToPb,
} from '../convert.js';
import type { PbCompactionRequest } from '../raft-request.js';
import type { EtcdServer } from '../server.js';
import { probe } from '../probe.js';
import { type Headers, checkLeader, checkNotLearner, checkQuota, unary } from './common.js';
import { EtcdError } from '../errors.js';
import type { AuthGate } from '../auth/gate.js';
import type { AuthInfo } from '../auth/store.js';
import { checkRange, checkTxn } from '../auth/request-perms.js';
import { Code } from '../grpc/codes.js';

/** etcd's isTxnSerializable: every top-level op of both branches is a serializable range. */
function isTxnSerializable(t: PbTxnRequest): boolean {
  return [...(t.success ?? []), ...(t.failure ?? [])].every((op) => op.request_range?.serializable === true);
}

/**
 * An unknown sort target under NONE, ASCEND or DESCEND: etcd 3.4 has no sorter for it
 * and crashes (a nil sort.Interface). Under an unknown order it sorts nothing and so
 * never looks at the target: rangeFromPb keeps key order then.
 */
const invalidSortOption = new EtcdError(Code.INVALID_ARGUMENT, 'etcdserver: invalid sort option');

/**
 * A checked txn, run as KV.Txn runs it: one that only reads is served locally, after a
 * ReadIndex unless every one of its ranges asked for a serializable read (so a follower
 * answers linearizably too); any other goes through raft. Lock and Election run their
 * txns through here, as etcd's run theirs through its KV server.
 */
export async function runTxn(server: EtcdServer, req: PbTxnRequest, txn: TxnRequest): Promise<TxnResponse> {
  if (isTxnReadonly(txn)) {
    if (!isTxnSerializable(req)) await server.linearizableReadNotify();
    return server.read((store) => store.txn(txn, 0));
  }
  checkQuota(server, 0);
  return server.proposals.propose({ kind: 'txn', body: req });
}

/** A range read and encoded a slice at a time, the event loop served between slices. */
async function encodedRange(store: MvccStore, range: RangeRequest, headers: Headers): Promise<EncodedMessage> {
  const out = new RangeResponseEncoder();
  const r = await store.rangeInSlices(range, out);
  return out.finish(headers.make(r.revision), r.more, r.count);
}

/** A sort order or target etcd 3.4 knows (0..max). */
const knownSortValue = (v: number, max: number): boolean => v >= 0 && v <= max;

export function kvService(server: EtcdServer, headers: Headers, gate: AuthGate): ServiceImplementation {
  return {
    // Not async, as every read's path: a serializable one runs without an async frame or
    // an await of its own, a linearizable one continues from its ReadIndex.
    Range: unary((req: PbRangeRequest, call) => {
      if (knownSortValue(req.sort_order, 2) && !knownSortValue(req.sort_target, 4)) throw invalidSortOption;
      const range = rangeFromPb(req);
      checkRangeRequest(range);
      const check = (who: AuthInfo | undefined): void => checkRange(gate.store, who, range);
      const serve = () => {
        if (range.rangeEnd !== undefined && isSliceable(range) && call instanceof ServerCall) {
          // gRPC takes the answer encoded: it is read and encoded in slices (the gateway's JSON is built whole)
          return gate.read(call, check, () => server.read((store): Promise<EncodedMessage> => encodedRange(store, range, headers)));
        }
        return gate.read(call, check, () => server.read((store) => store.range(range))).then((r) => rangeRespToPb(r, headers.make(r.revision)));
      };
      if (req.serializable) return serve();
      checkNotLearner(server);
      checkLeader(server, call.metadata);
      return server.linearizableReadNotify().then(serve);
    }),

    // Not async, as the hot path of every write: no async frame or await of its own
    // (an await of the caller costs a turn even when auth is off and the answer is at hand).
    Put: unary((req: PbPutRequest, call) => {
      probe?.mark('put-decoded');
      checkPutRequest(putFromPb(req));
      checkNotLearner(server);
      checkLeader(server, call.metadata);
      checkQuota(server, req.key.length + req.value.length);
      const put = { kind: 'put', body: req } as const;
      const who = gate.caller(call);
      const proposed = who instanceof Promise ? who.then((w) => server.proposals.propose(put, w)) : server.proposals.propose(put, who);
      return proposed.then((r) => putRespToPb(r, headers.make(r.revision)));
    }),

    DeleteRange: unary(async (req: PbDeleteRangeRequest, call) => {
      checkDeleteRangeRequest(deleteRangeFromPb(req));
      checkNotLearner(server);
      checkLeader(server, call.metadata);
      const r = await server.proposals.propose({ kind: 'deleteRange', body: req }, await gate.caller(call));
      return deleteRespToPb(r, headers.make(r.revision));
    }),

    Txn: unary(async (req: PbTxnRequest, call) => {
      const txn = txnFromPb(req);
      checkTxnRequest(txn, server.config.maxTxnOps);
      checkNotLearner(server);
      checkLeader(server, call.metadata);
      if (isTxnReadonly(txn)) {
        // Like etcd: a txn that only reads is served locally, after a ReadIndex unless
        // every one of its ranges asked for a serializable read.
        if (!isTxnSerializable(req)) await server.linearizableReadNotify();
        const r = await gate.read(call, (who) => checkTxn(gate.store, who, txn), () => server.read((store) => store.txn(txn, 0)));
        return txnRespToPb(r, headers.make(r.revision));
      }
      checkQuota(server, 0);
      const r = await server.proposals.propose({ kind: 'txn', body: req }, await gate.caller(call));
      return txnRespToPb(r, headers.make(r.revision));
    }),

    Compact: unary(async (req: PbCompactionRequest, call) => {
      checkNotLearner(server);
      checkLeader(server, call.metadata);
      const r = await server.proposals.propose({ kind: 'compaction', body: req }, await gate.caller(call));
      if (req.physical) await r.done;
      return { header: headers.make() };
    }),
  };
}
