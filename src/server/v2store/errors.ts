// The v2 store's errors: etcd's v2 error codes, messages and HTTP statuses. v2 clients
// (etcdctl, go-etcd, python-etcd, Patroni) branch on `errorCode`, and etcdctl prints
// `Error:  <code>: <message> (<cause>) [<index>]`, so these are a wire contract.

export const V2ErrorCode = {
  keyNotFound: 100,
  testFailed: 101,
  notFile: 102,
  notDir: 104,
  nodeExist: 105,
  rootReadOnly: 107,
  dirNotEmpty: 108,
  unauthorized: 110,
  prevValueRequired: 201,
  ttlNaN: 202,
  indexNaN: 203,
  invalidField: 209,
  invalidForm: 210,
  refreshValue: 211,
  refreshTtlRequired: 212,
  raftInternal: 300,
  leaderElect: 301,
  eventIndexCleared: 401,
} as const;

export type V2ErrorCode = (typeof V2ErrorCode)[keyof typeof V2ErrorCode];

const MESSAGES: Record<V2ErrorCode, string> = {
  100: 'Key not found',
  101: 'Compare failed',
  102: 'Not a file',
  104: 'Not a directory',
  105: 'Key already exists',
  107: 'Root is read only',
  108: 'Directory not empty',
  110: 'The request requires user authentication',
  201: 'PrevValue is Required in POST form',
  202: 'The given TTL in POST form is not a number',
  203: 'The given index in POST form is not a number',
  209: 'Invalid field',
  210: 'Invalid POST form',
  211: 'Value provided on refresh',
  212: 'A TTL must be provided on refresh',
  300: 'Raft Internal Error',
  301: 'During Leader Election',
  401: 'The event in requested index is outdated and cleared',
};

/** Codes answered with a status other than 400 Bad Request. */
const STATUS: Partial<Record<V2ErrorCode, number>> = {
  100: 404,
  101: 412,
  102: 403,
  105: 412,
  108: 403,
  110: 401,
  300: 500,
  301: 500,
};

export class V2Error extends Error {
  readonly errorCode: V2ErrorCode;
  constructor(
    code: V2ErrorCode,
    override readonly cause: string,
    /** the store index when it happened (0 for errors found before the store is asked) */
    readonly index: number,
  ) {
    super(MESSAGES[code]);
    this.name = 'V2Error';
    this.errorCode = code;
  }

  get status(): number {
    return STATUS[this.errorCode] ?? 400;
  }

  /** The same error with another cause (the HTTP layer strips the store's key prefix). */
  withCause(cause: string): V2Error {
    return new V2Error(this.errorCode, cause, this.index);
  }

  /** etcd's JSON body: errorCode, message, cause (omitted when empty), index. */
  toJSON(): { errorCode: number; message: string; cause?: string; index: number } {
    return {
      errorCode: this.errorCode,
      message: this.message,
      ...(this.cause !== '' ? { cause: this.cause } : {}),
      index: this.index,
    };
  }
}
