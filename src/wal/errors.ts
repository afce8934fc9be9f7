// Errors of the WAL and snap layers. Messages start with etcd's own strings
// ("wal: crc mismatch", "snap: no available snapshot"...) so operators can search
// for them, and add what etcd leaves out: which file, which offset, what to do.

/** Base class: anything the WAL layer refuses or cannot do. */
export class WalError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WalError';
  }
}

/**
 * The log is damaged somewhere other than its torn tail (a bit flip, a lost
 * sector, a bad length word): replaying past it would invent or lose entries, so
 * nothing is read. Names the segment file and the byte offset of the bad frame.
 */
export class WalCorruptError extends WalError {
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(
      `wal: ${reason} in ${file} at offset ${offset}; the WAL is corrupt before its tail ` +
        `and cannot be repaired automatically (restore this member from a backup or remove it and re-add it to the cluster)`,
    );
    this.name = 'WalCorruptError';
  }
}

/**
 * Another process holds the data directory. Raised at once rather than waiting,
 * so a second etcd on the same directory fails fast instead of hanging.
 */
export class WalLockedError extends WalError {
  constructor(
    readonly dir: string,
    readonly holder: string,
  ) {
    super(`wal: ${dir} is locked by ${holder}; is another etcd running on this data directory?`);
    this.name = 'WalLockedError';
  }
}

/**
 * A write or fsync failed earlier. After a failed fsync the kernel may already have
 * dropped the dirty pages, so nothing written since the last good sync can be
 * trusted: the WAL refuses every further write until it is reopened.
 */
export class WalFailedError extends WalError {
  constructor(cause: unknown) {
    super(`wal: refusing writes after an earlier I/O failure (${describe(cause)}); restart the member to recover`, {
      cause,
    });
    this.name = 'WalFailedError';
  }
}

export class SnapError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SnapError';
  }
}

export function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
