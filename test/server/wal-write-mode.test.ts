// WalWriteMode: a durable WAL write blocks the main thread only when the member has had no
// client request but writes since the write before it, and while the disk is quick.

import { expect, it } from 'vitest';
import { BLOCKING_WRITE_MAX_MS, WalWriteMode } from '../../src/server/wal-write-mode.js';

it('blocks while only writes come and the disk is quick; a read, or a slow sync, sends the next write through the pool', () => {
  let others = 0;
  const mode = new WalWriteMode(() => others);
  expect(mode.mayBlock()).toBe(true);
  mode.synced(0.0003);
  expect(mode.mayBlock()).toBe(true);
  // a read since the last write: this write goes through the pool, and the next blocks again
  others++;
  expect(mode.mayBlock()).toBe(false);
  expect(mode.mayBlock()).toBe(true);
  // a slow sync: through the pool until one is quick again
  mode.synced((BLOCKING_WRITE_MAX_MS + 1) / 1000);
  expect(mode.mayBlock()).toBe(false);
  expect(mode.mayBlock()).toBe(false);
  mode.synced(BLOCKING_WRITE_MAX_MS / 1000);
  expect(mode.mayBlock()).toBe(true);
});
