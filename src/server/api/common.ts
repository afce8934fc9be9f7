// What every gRPC service shares: response headers, error translation, the unary
// wrapper, and the checks etcd makes before serving a request (leader, learner, quota).

import type { CallMetadata, UnaryCall, UnaryCallback } from '../grpc/call.js';
import type Long from 'long';
import { MvccError } from '../../mvcc/index.js';
import { AlarmAction, AlarmType } from '../alarms.js';
import { type EtcdError, Errors, toServiceError } from '../errors.js';
import { uint64 } from '../pb.js';
import type { EtcdServer } from '../server.js';

export interface ResponseHeader {
  cluster_id: Long;
  member_id: Long;
  revision?: number;
  raft_term: number;
}

/** Fills response headers as etcd does: cluster, member, revision (current unless given), term. */
export class Headers {
  private readonly clusterId: Long;
  private readonly memberId: Long;

  constructor(private readonly server: EtcdServer) {
    this.clusterId = uint64(server.clusterId);
    this.memberId = uint64(server.memberId);
  }

  make(revision?: number): ResponseHeader {
    return {
      cluster_id: this.clusterId,
      member_id: this.memberId,
      revision: revision ?? this.server.store.currentRevision,
      raft_term: this.server.raftTerm,
    };
  }

  /** Membership responses carry no revision. */
  withoutRevision(): ResponseHeader {
    return { cluster_id: this.clusterId, member_id: this.memberId, raft_term: this.server.raftTerm };
  }
}

const mvccErrors: Record<string, EtcdError> = {
  compacted: Errors.compacted,
  'future-rev': Errors.futureRev,
  'key-not-found': Errors.keyNotFound,
  'value-provided': Errors.valueProvided,
  'lease-provided': Errors.leaseProvided,
  'duplicate-key': Errors.duplicateKey,
  'too-many-ops': Errors.tooManyOps,
  'empty-key': Errors.emptyKey,
};

/** Maps store errors to etcd's client-visible errors; others pass through. */
export function translate(err: unknown): unknown {
  if (err instanceof MvccError) return mvccErrors[err.code] ?? err;
  return err;
}

/**
 * Wraps a unary handler that answers with a promise: its result is the response, a throw
 * or a rejection is the gRPC status. (A handler need not be an async function: a throw
 * before its promise is made is a status too.)
 */
export function unary<Req, Res>(fn: (req: Req, call: UnaryCall<Req>) => Promise<Res>) {
  return (call: UnaryCall<Req>, callback: UnaryCallback<Res>): void => {
    let response: Promise<Res>;
    try {
      response = fn(call.request, call);
    } catch (err) {
      callback(toServiceError(translate(err)));
      return;
    }
    response.then(
      (res) => callback(null, res),
      (err: unknown) => callback(toServiceError(translate(err))),
    );
  };
}

/** clientv3 sets `hasleader: true` on requests that must fail fast without a leader. */
export function requiresLeader(md: CallMetadata): boolean {
  return md.get('hasleader')[0] === 'true';
}

export function checkLeader(server: EtcdServer, md: CallMetadata): void {
  if (requiresLeader(md) && server.leader === 0n) throw Errors.noLeader;
}

export function checkNotLearner(server: EtcdServer): void {
  if (server.isLearner) throw Errors.notSupportedForLearner;
}

/**
 * etcd's quota check before proposing a write that needs space: refuse while NOSPACE is
 * active, and raise it when the write would push the backend past the quota.
 */
export function checkQuota(server: EtcdServer, cost: number): void {
  if (server.alarms.has(AlarmType.NOSPACE)) throw Errors.noSpace;
  const quota = server.config.quotaBackendBytes;
  if (quota > 0 && server.store.dbSize() + cost > quota) {
    server.proposals
      .propose({ kind: 'alarm', body: { action: AlarmAction.ACTIVATE, memberID: uint64(server.memberId), alarm: AlarmType.NOSPACE } })
      .catch(() => undefined);
    throw Errors.noSpace;
  }
}
