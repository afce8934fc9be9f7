// Majority quorum maths over a set of voters. Pure functions, no raft state.

export type VoteResult = 'won' | 'lost' | 'pending';

/** size of a majority of n voters */
export function majority(n: number): number {
  return (n >> 1) + 1;
}

/**
 * The largest index acknowledged by a majority of voters, given each voter's
 * acknowledged (match) index. 0 for an empty voter set.
 */
export function committedIndex(voters: ReadonlySet<bigint>, acked: (id: bigint) => number): number {
  const n = voters.size;
  if (n === 0) return 0;
  const idx: number[] = new Array<number>(n);
  let i = 0;
  for (const id of voters) {
    // insertion sort, descending: voter sets are tiny
    const v = acked(id);
    let j = i++;
    while (j > 0 && idx[j - 1]! < v) {
      idx[j] = idx[j - 1]!;
      j--;
    }
    idx[j] = v;
  }
  return idx[majority(n) - 1]!;
}

/**
 * Outcome of an election given the votes received so far (true = granted).
 * Votes from non-voters are ignored. An empty voter set cannot elect anyone.
 */
export function voteResult(voters: ReadonlySet<bigint>, votes: ReadonlyMap<bigint, boolean>): VoteResult {
  if (voters.size === 0) return 'lost';
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = majority(voters.size);
  if (granted >= q) return 'won';
  if (granted + missing >= q) return 'pending';
  return 'lost';
}
