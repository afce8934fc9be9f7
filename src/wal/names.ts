// File names of WAL segments (`%016x-%016x.wal`: sequence, first raft index) and
// snap files (`%016x-%016x.snap`: term, index), as etcd writes them. Sorting the
// names as strings sorts them by their numbers, because both parts are fixed width.

const WAL_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;
const SNAP_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;

function hex16(n: number): string {
  return n.toString(16).padStart(16, '0');
}

function parseHex(s: string): number | undefined {
  const n = parseInt(s, 16);
  return Number.isSafeInteger(n) ? n : undefined;
}

export function walName(seq: number, index: number): string {
  return `${hex16(seq)}-${hex16(index)}.wal`;
}

export interface WalName {
  readonly seq: number;
  readonly index: number;
}

/** undefined for anything that is not a segment name (tmp files, locks, `.broken`). */
export function parseWalName(name: string): WalName | undefined {
  const m = WAL_NAME.exec(name);
  if (!m) return undefined;
  const seq = parseHex(m[1]!);
  const index = parseHex(m[2]!);
  return seq === undefined || index === undefined ? undefined : { seq, index };
}

export function snapName(term: number, index: number): string {
  return `${hex16(term)}-${hex16(index)}.snap`;
}

export function parseSnapName(name: string): { term: number; index: number } | undefined {
  const m = SNAP_NAME.exec(name);
  if (!m) return undefined;
  const term = parseHex(m[1]!);
  const index = parseHex(m[2]!);
  return term === undefined || index === undefined ? undefined : { term, index };
}

/** The segment names among `names`, sorted by sequence. */
export function walNames(names: readonly string[]): string[] {
  return names.filter((n) => parseWalName(n) !== undefined).sort();
}

/**
 * The position in sorted segment `names` of the last segment whose first index is
 * at most `index`: the segment where reading from snapshot `index` must start.
 */
export function searchIndex(names: readonly string[], index: number): number {
  for (let i = names.length - 1; i >= 0; i--) {
    if (index >= parseWalName(names[i]!)!.index) return i;
  }
  return -1;
}

/** True when the sequence numbers of sorted segment `names` have no gaps. */
export function isValidSeq(names: readonly string[]): boolean {
  for (let i = 1; i < names.length; i++) {
    if (parseWalName(names[i]!)!.seq !== parseWalName(names[i - 1]!)!.seq + 1) return false;
  }
  return true;
}

/**
 * etcd's prefix for temporary bbolt files in the snap dir (its defrag's; etcd-ts's
 * backups on their way to a client): a crash can orphan one, so a start removes them.
 */
export const TEMP_DB_PREFIX = 'db.tmp';
