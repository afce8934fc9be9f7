// The raft library logs through this minimal interface; the server adapts it to its
// structured logger. Messages follow etcd's raft wording so operators can grep for
// the same lines ("... became leader at term 2").

export interface RaftLogger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

const noop = (): void => {};

/** The default: raft is a library and stays silent unless given a logger. */
export const discardLogger: RaftLogger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop });

/** A member ID as etcd prints it: 16 lowercase hex digits. */
export function hex16(id: bigint): string {
  return id.toString(16).padStart(16, '0');
}
