// A backup on its way to a client: etcd's backend database written to a temporary file
// in the member's snap dir, then unlinked as soon as it is open, so that the open handle
// is all that is left of it and closing the handle frees its space, whatever ends the
// stream (its end, the client cancelling, an error). A crash while the file is still
// being written leaves a `db.tmp.*` file, which a start removes as etcd's does.

import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rm } from 'node:fs/promises';
import path from 'node:path';
import type { BucketView } from '../../mvcc/index.js';
import { TEMP_DB_PREFIX } from '../../wal/index.js';
import { type ClusterState, writeEtcdBackend } from './etcd-db.js';
import type { ExportThread } from './export-thread.js';

export interface OpenBackup {
  /** the database, open for reading and already unlinked; close it when done */
  readonly file: FileHandle;
  readonly size: number;
}

/**
 * Writes the backup of `state` into `snapDir` and opens it; closes the view. Aborting
 * `signal` stops the write and removes the file. `thread`, the reader the view was taken
 * with, writes it off this thread.
 */
export async function openBackup(
  snapDir: string,
  state: { view: BucketView; cluster: ClusterState },
  { signal, thread }: { signal?: AbortSignal; thread?: ExportThread } = {},
): Promise<OpenBackup> {
  const tmp = path.join(snapDir, `${TEMP_DB_PREFIX}.snapshot-${randomBytes(6).toString('hex')}`);
  try {
    const { size } = thread === undefined ? await writeEtcdBackend(tmp, state.view, state.cluster, signal) : await thread.write(tmp, state.view.point, state.cluster, signal);
    const file = await open(tmp, 'r');
    await rm(tmp).catch(async (err: unknown) => {
      await file.close();
      throw err;
    });
    return { file, size };
  } finally {
    await state.view.close();
    // gone already, unless the write or the open failed
    await rm(tmp, { force: true });
  }
}

/** A backup is read from its file this much at a time. */
const READ_CHUNK_BYTES = 1024 * 1024;

/** Streams the backup's bytes, then closes its file (also when the reader stops early). */
export async function* readBackup({ file, size }: OpenBackup): AsyncGenerator<Buffer> {
  try {
    for (let off = 0; off < size; ) {
      const { bytesRead, buffer } = await file.read(Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES, size - off)), 0, Math.min(READ_CHUNK_BYTES, size - off), off);
      if (bytesRead === 0) throw new Error(`the database ended after ${off} of its ${size} bytes`);
      off += bytesRead;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await file.close();
  }
}
