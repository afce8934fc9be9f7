// etcd's client-visible errors. Clients (clientv3, etcdctl, the etcd3 npm client) match
// on the exact message text, so these strings are a wire contract, as are the gRPC codes.

import { Code } from './grpc/codes.js';

export class EtcdError extends Error {
  constructor(
    readonly code: Code,
    message: string,
  ) {
    super(message);
    this.name = 'EtcdError';
  }
}

function e(code: Code, message: string): EtcdError {
  return new EtcdError(code, message);
}

export const Errors = {
  emptyKey: e(Code.INVALID_ARGUMENT, 'etcdserver: key is not provided'),
  keyNotFound: e(Code.INVALID_ARGUMENT, 'etcdserver: key not found'),
  valueProvided: e(Code.INVALID_ARGUMENT, 'etcdserver: value is provided'),
  leaseProvided: e(Code.INVALID_ARGUMENT, 'etcdserver: lease is provided'),
  tooManyOps: e(Code.INVALID_ARGUMENT, 'etcdserver: too many operations in txn request'),
  duplicateKey: e(Code.INVALID_ARGUMENT, 'etcdserver: duplicate key given in txn request'),
  compacted: e(Code.OUT_OF_RANGE, 'etcdserver: mvcc: required revision has been compacted'),
  futureRev: e(Code.OUT_OF_RANGE, 'etcdserver: mvcc: required revision is a future revision'),
  noSpace: e(Code.RESOURCE_EXHAUSTED, 'etcdserver: mvcc: database space exceeded'),
  leaseNotFound: e(Code.NOT_FOUND, 'etcdserver: requested lease not found'),
  leaseExist: e(Code.FAILED_PRECONDITION, 'etcdserver: lease already exists'),
  leaseTTLTooLarge: e(Code.OUT_OF_RANGE, 'etcdserver: too large lease TTL'),
  watchCanceled: e(Code.CANCELLED, 'etcdserver: watch canceled'),
  memberExist: e(Code.FAILED_PRECONDITION, 'etcdserver: member ID already exist'),
  peerURLExist: e(Code.FAILED_PRECONDITION, 'etcdserver: Peer URLs already exists'),
  memberNotEnoughStarted: e(
    Code.FAILED_PRECONDITION,
    'etcdserver: re-configuration failed due to not enough started members',
  ),
  memberBadURLs: e(Code.INVALID_ARGUMENT, 'etcdserver: given member URLs are invalid'),
  memberNotFound: e(Code.NOT_FOUND, 'etcdserver: member not found'),
  memberNotLearner: e(Code.FAILED_PRECONDITION, 'etcdserver: can only promote a learner member'),
  learnerNotReady: e(
    Code.FAILED_PRECONDITION,
    'etcdserver: can only promote a learner member which is in sync with leader',
  ),
  tooManyLearners: e(Code.FAILED_PRECONDITION, 'etcdserver: too many learner members in cluster'),
  requestTooLarge: e(Code.INVALID_ARGUMENT, 'etcdserver: request is too large'),
  tooManyRequests: e(Code.RESOURCE_EXHAUSTED, 'etcdserver: too many requests'),
  noLeader: e(Code.UNAVAILABLE, 'etcdserver: no leader'),
  notLeader: e(Code.FAILED_PRECONDITION, 'etcdserver: not leader'),
  leaderChanged: e(Code.UNAVAILABLE, 'etcdserver: leader changed'),
  stopped: e(Code.UNAVAILABLE, 'etcdserver: server stopped'),
  timeout: e(Code.UNAVAILABLE, 'etcdserver: request timed out'),
  timeoutDueToLeaderFail: e(
    Code.UNAVAILABLE,
    'etcdserver: request timed out, possibly due to previous leader failure',
  ),
  timeoutDueToConnectionLost: e(Code.UNAVAILABLE, 'etcdserver: request timed out, possibly due to connection lost'),
  timeoutWaitAppliedIndex: e(
    Code.UNAVAILABLE,
    'etcdserver: request timed out, waiting for the applied index took too long',
  ),
  /** the caller went away while its request waited (etcd's ErrCanceled; no client reads it) */
  canceled: e(Code.CANCELLED, 'etcdserver: request cancelled'),
  /** a proposal that found no leader to take it before its deadline: etcd returns the context's own error */
  proposalDeadline: e(Code.DEADLINE_EXCEEDED, 'context deadline exceeded'),
  unhealthyCluster: e(Code.UNAVAILABLE, 'etcdserver: unhealthy cluster'),
  notSupportedForLearner: e(Code.UNAVAILABLE, 'etcdserver: rpc not supported for learner'),
  badLeaderTransferee: e(Code.FAILED_PRECONDITION, 'etcdserver: bad leader transferee'),
  corrupt: e(Code.DATA_LOSS, 'etcdserver: corrupt cluster'),
  rootUserNotExist: e(Code.FAILED_PRECONDITION, 'etcdserver: root user does not exist'),
  rootRoleNotExist: e(Code.FAILED_PRECONDITION, 'etcdserver: root user does not have root role'),
  userAlreadyExist: e(Code.FAILED_PRECONDITION, 'etcdserver: user name already exists'),
  userEmpty: e(Code.INVALID_ARGUMENT, 'etcdserver: user name is empty'),
  // etcd has none: a name past bbolt's key limit ends etcd 3.4 ("key too large"); etcd-ts,
  // whose backups are bbolt files, refuses it instead
  userTooLong: e(Code.INVALID_ARGUMENT, 'etcdserver: user name is longer than 32768 bytes'),
  userNotFound: e(Code.FAILED_PRECONDITION, 'etcdserver: user name not found'),
  roleAlreadyExist: e(Code.FAILED_PRECONDITION, 'etcdserver: role name already exists'),
  roleNotFound: e(Code.FAILED_PRECONDITION, 'etcdserver: role name not found'),
  roleEmpty: e(Code.INVALID_ARGUMENT, 'etcdserver: role name is empty'),
  roleTooLong: e(Code.INVALID_ARGUMENT, 'etcdserver: role name is longer than 32768 bytes'),
  authFailed: e(Code.INVALID_ARGUMENT, 'etcdserver: authentication failed, invalid user ID or password'),
  // etcd has no gRPC status for this one: it reaches clients as codes.Unknown with auth's own text
  noPasswordUser: e(Code.UNKNOWN, 'auth: authentication failed, password was given for no password user'),
  permissionDenied: e(Code.PERMISSION_DENIED, 'etcdserver: permission denied'),
  roleNotGranted: e(Code.FAILED_PRECONDITION, 'etcdserver: role is not granted to the user'),
  permissionNotGranted: e(Code.FAILED_PRECONDITION, 'etcdserver: permission is not granted to the role'),
  authNotEnabled: e(Code.FAILED_PRECONDITION, 'etcdserver: authentication is not enabled'),
  invalidAuthToken: e(Code.UNAUTHENTICATED, 'etcdserver: invalid auth token'),
  invalidAuthMgmt: e(Code.INVALID_ARGUMENT, 'etcdserver: invalid auth management'),
  authOldRevision: e(Code.INVALID_ARGUMENT, 'etcdserver: revision of auth store is old'),
} as const;

export type KnownError = keyof typeof Errors;

/**
 * The status a client gets for an error a request failed with: etcd's own errors as they
 * are; anything else is this member's internal failure (a store or I/O exception, the
 * store closing under a request at shutdown). etcd's clients decide by code whether to
 * retry, so that is Unavailable, which they retry (against another member if need be),
 * with the failure's own text, rather than Unknown, which they give up on.
 */
export function toServiceError(err: unknown): { code: Code; details: string } {
  if (err instanceof EtcdError) return { code: err.code, details: err.message };
  const text = err instanceof Error ? err.message : String(err);
  return { code: Code.UNAVAILABLE, details: text };
}
