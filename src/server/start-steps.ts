// The durable steps of a member's start, kept apart from bootstrap so the command line can
// name them without loading the server.

/**
 * The points of a first start after which something durable is left in the data dir,
 * in order. A process that dies right after any of them (kill -9, a power cut) leaves a
 * data dir the next start continues from: test/e2e/first-start-crash.test.ts kills the
 * member at each through bin/etcd-ts's ETCDTS_TEST_KILL_AT.
 */
export const START_STEPS = [
  /** the data dir and member/snap exist; nothing in them */
  'data-dir-created',
  /** member/leveldb exists (empty on a first start); no WAL yet */
  'store-opened',
  /** member/wal holds its metadata and nothing from raft */
  'wal-created',
  /** raft's first Ready (the bootstrap entries and the HardState committing them) is durable; nothing of it sent or applied */
  'first-ready-persisted',
  /** this member's attributes are applied; it is about to serve clients */
  'published',
] as const;

export type StartStep = (typeof START_STEPS)[number];
