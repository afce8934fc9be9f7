// Errors the store raises, each with etcd's exact message and the gRPC status etcd
// returns for it, so the server can forward them without a lookup table of its own.

/** gRPC status codes used below (google.golang.org/grpc/codes). */
export const GrpcCode = { InvalidArgument: 3, NotFound: 5, OutOfRange: 11 } as const;

const ERRORS = {
  /** mvcc.ErrCompacted; on the wire rpctypes.ErrGRPCCompacted */
  compacted: ['mvcc: required revision has been compacted', GrpcCode.OutOfRange, true],
  /** mvcc.ErrFutureRev; on the wire rpctypes.ErrGRPCFutureRev */
  'future-rev': ['mvcc: required revision is a future revision', GrpcCode.OutOfRange, true],
  /** etcdserver.ErrKeyNotFound: ignore_value / ignore_lease on a missing key */
  'key-not-found': ['etcdserver: key not found', GrpcCode.InvalidArgument, false],
  'value-provided': ['etcdserver: value is provided', GrpcCode.InvalidArgument, false],
  'lease-provided': ['etcdserver: lease is provided', GrpcCode.InvalidArgument, false],
  'duplicate-key': ['etcdserver: duplicate key given in txn request', GrpcCode.InvalidArgument, false],
  'too-many-ops': ['etcdserver: too many operations in txn request', GrpcCode.InvalidArgument, false],
  'empty-key': ['etcdserver: key is not provided', GrpcCode.InvalidArgument, false],
} as const;

export type MvccErrorCode = keyof typeof ERRORS;

export class MvccError extends Error {
  /** gRPC status code etcd answers with */
  readonly grpcCode: number;
  /** the message on the wire: mvcc errors gain the 'etcdserver: ' prefix there */
  readonly grpcMessage: string;

  constructor(readonly code: MvccErrorCode) {
    const [message, grpcCode, prefixed] = ERRORS[code];
    super(message);
    this.name = 'MvccError';
    this.grpcCode = grpcCode;
    this.grpcMessage = prefixed ? `etcdserver: ${message}` : message;
  }
}

export function isMvccError(e: unknown, code?: MvccErrorCode): e is MvccError {
  return e instanceof MvccError && (code === undefined || e.code === code);
}
