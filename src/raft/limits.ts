// How large a term or index this raft accepts. Both are uint64 in raftpb but JS
// numbers here, exact only up to 2^53-1 (the codec refuses anything larger). That is
// not enough of a guard on its own: a member that adopted term 2^53-1 from a peer
// would have to campaign at 2^53, which no member can represent, and the cluster
// could never elect a leader again (etcd-io/raft has the same cliff at 2^64-1,
// where the next campaign wraps to term 0). So:
//
// - No peer message may move a member past TERM_JUMP_LIMIT in one step: above it, a
//   term is accepted only if it is at most one past our own, which is how terms grow
//   in elections. After any single message, at least 2^32 elections remain (~136
//   years at one a second); a peer would need billions of messages, each bumping the
//   term by one, to use them up.
// - A member at MAX_TERM does not campaign (the next term would not be exact).
// - Indexes only grow by appending, so one flat bound suffices: MAX_INDEX leaves as
//   much room as a log of 2^32 more entries; a log reaching it honestly would take
//   ~285 years at a million entries a second.

/** The largest term a member holds: the next one would not be an exact JS number. */
export const MAX_TERM = Number.MAX_SAFE_INTEGER;

/** Above this term, a peer's message may only move us one term further. */
export const TERM_JUMP_LIMIT = 2 ** 53 - 2 ** 32;

/** The largest log index (and commit index) a member accepts from a peer. */
export const MAX_INDEX = 2 ** 53 - 2 ** 32;

/** A term: a non-negative integer no larger than MAX_TERM. */
export function isTerm(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= MAX_TERM;
}

/** A log index this raft may hold: a non-negative integer no larger than MAX_INDEX. */
export function isIndex(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= MAX_INDEX;
}

/** Whether a member at term `ours` may adopt `theirs` from a peer. */
export function isReachableTerm(theirs: number, ours: number): boolean {
  return theirs <= TERM_JUMP_LIMIT || theirs <= ours + 1;
}
