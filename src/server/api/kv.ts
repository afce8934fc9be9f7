// etcdserverpb.KV: Range, Put, DeleteRange, Txn, Compact.

import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { DeleteRangeResponse, PutResponse, TxnResponse } from '../../mvcc/index.js';
import {
  type PbDeleteRangeRequest,
  type PbPutRequest,
  type PbRangeRequest,
  type PbTxnRequest,
  deleteRespToPb,
  putRespToPb,
  rangeFromPb,
  rangeRespToPb,
  txnFromPb,
  txnRespToPb,
} from '../convert.js';
import type { Int64 } from '../pb.js';
import { EtcdServer } from '../server.js';
import { type Headers, checkLeader, checkNotLearner, checkQuota, unary } from './common.js';
import { checkDeleteRange, checkPut, checkRange, checkTxn } from './validate.js';

export function kvService(server: EtcdServer, headers: Headers): UntypedServiceImplementation {
  return {
    Range: unary(async (req: PbRangeRequest, call) => {
      checkRange(req);
      if (!req.serializable) {
        checkNotLearner(server);
        checkLeader(server, call.metadata);
        await server.linearizableReadNotify();
      }
      const r = await server.store.range(rangeFromPb(req));
      return rangeRespToPb(r, headers.make(r.revision));
    }),

    Put: unary(async (req: PbPutRequest, call) => {
      checkPut(req);
      checkNotLearner(server);
      checkLeader(server, call.metadata);
      checkQuota(server, req.key.length + req.value.length);
      const r = await server.propose<PutResponse>({ put: req });
      return putRespToPb(r, headers.make(r.revision));
    }),

    DeleteRange: unary(async (req: PbDeleteRangeRequest, call) => {
      checkDeleteRange(req);
      checkNotLearner(server);
      checkLeader(server, call.metadata);
      const r = await server.propose<DeleteRangeResponse>({ delete_range: req });
      return deleteRespToPb(r, headers.make(r.revision));
    }),

    Txn: unary(async (req: PbTxnRequest, call) => {
      checkTxn(req, server.config.maxTxnOps);
      checkNotLearner(server);
      checkLeader(server, call.metadata);
      if (EtcdServer.txnHasWrites(txnFromPb(req))) checkQuota(server, 0);
      const r = await server.propose<TxnResponse>({ txn: req });
      return txnRespToPb(r, headers.make(r.revision));
    }),

    Compact: unary(async (req: { revision: Int64; physical: boolean }, call) => {
      checkNotLearner(server);
      checkLeader(server, call.metadata);
      const r = await server.propose<{ done: Promise<void> }>({ compaction: req });
      if (req.physical) await r.done;
      return { header: headers.make() };
    }),
  };
}
