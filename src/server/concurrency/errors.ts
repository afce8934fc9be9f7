// The errors of etcd's concurrency recipes and of its Lock and Election services. They
// reach clients as etcd's do: through its in-process client, which leaves every error
// it hands these services as a plain error, so gRPC sends them with code Unknown.

import { Code } from '../grpc/codes.js';
import { EtcdError } from '../errors.js';

function unknown(message: string): EtcdError {
  return new EtcdError(Code.UNKNOWN, message);
}

export const ConcurrencyErrors = {
  /** concurrency.ErrElectionNotLeader: the leader key is gone or was created at another revision */
  electionNotLeader: unknown('election: not leader'),
  /** concurrency.ErrElectionNoLeader */
  electionNoLeader: unknown('election: no leader'),
  /** v3election.ErrMissingLeaderKey */
  missingLeaderKey: unknown('"leader" field must be provided'),
  /**
   * A campaign's own key went while it waited. etcd 3.4 has no such error (its
   * campaign goes on and reports leadership of a deleted key); the words follow
   * election.go's.
   */
  electionSessionExpired: unknown('election: session expired'),
  /** concurrency.ErrSessionExpired (mutex.go, etcd 3.5+): a lock's own key went while it waited */
  mutexSessionExpired: unknown('mutex: session is expired'),
} as const;

/** An error as these services return it: etcd's message, code Unknown. */
export function asUnknown(err: EtcdError): EtcdError {
  return err.code === Code.UNKNOWN ? err : unknown(err.message);
}
