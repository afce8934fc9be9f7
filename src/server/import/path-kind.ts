// What a data dir path holds, as the start-up code decides by it (a LevelDB store is a
// directory, etcd's bbolt db a file). Its own module: the importers, the received-db
// code and the legacy-store move all ask, and none of them may import another for it.

import { stat } from 'node:fs/promises';

/** What is at a path: nothing, a directory (a LevelDB store) or a file (a bbolt db). */
export async function pathKind(p: string): Promise<'none' | 'dir' | 'file'> {
  try {
    return (await stat(p)).isDirectory() ? 'dir' : 'file';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'none';
    throw err;
  }
}
