// How many simulator seeds CI runs (seeds 1..N of each kind): the broken-driver proofs
// check that the seed catching each broken driver is one of them.

/** whole members (test/raft/sim-members.test.ts) */
export const MEMBER_SEEDS = 300;
