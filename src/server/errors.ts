// etcd's client-visible errors. Clients (clientv3, etcdctl, the etcd3 npm client) match
// on the exact message text, so these strings are a wire contract, as are the gRPC codes.

import { status as Code } from '@grpc/grpc-js';

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
  timeoutWaitAppliedIndex: e(
    Code.UNAVAILABLE,
    'etcdserver: request timed out, waiting for the applied index took too long',
  ),
  unhealthyCluster: e(Code.UNAVAILABLE, 'etcdserver: unhealthy cluster'),
  notSupportedForLearner: e(Code.UNAVAILABLE, 'etcdserver: rpc not supported for learner'),
  badLeaderTransferee: e(Code.FAILED_PRECONDITION, 'etcdserver: bad leader transferee'),
  corrupt: e(Code.DATA_LOSS, 'etcdserver: corrupt cluster'),
  rootUserNotExist: e(Code.FAILED_PRECONDITION, 'etcdserver: root user does not exist'),
  rootRoleNotExist: e(Code.FAILED_PRECONDITION, 'etcdserver: root user does not have root role'),
  userAlreadyExist: e(Code.FAILED_PRECONDITION, 'etcdserver: user name already exists'),
  userEmpty: e(Code.INVALID_ARGUMENT, 'etcdserver: user name is empty'),
  userNotFound: e(Code.FAILED_PRECONDITION, 'etcdserver: user name not found'),
  roleAlreadyExist: e(Code.FAILED_PRECONDITION, 'etcdserver: role name already exists'),
  roleNotFound: e(Code.FAILED_PRECONDITION, 'etcdserver: role name not found'),
  roleEmpty: e(Code.INVALID_ARGUMENT, 'etcdserver: role name is empty'),
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

/** The gRPC status object grpc-js sends for an error thrown by a handler. */
export function toServiceError(err: unknown): { code: Code; details: string } {
  if (err instanceof EtcdError) return { code: err.code, details: err.message };
  // etcd turns unexpected errors into codes.Unknown carrying the raw text.
  const text = err instanceof Error ? err.message : String(err);
  return { code: Code.UNKNOWN, details: text };
}
