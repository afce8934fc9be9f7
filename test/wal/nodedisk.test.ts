// The production Disk's durable write: once its O_DSYNC descriptor is open, the write(2) is
// handed to libuv in the call itself, so a caller that starts the WAL's write and then does
// other work on the loop (the raft leader writing its MsgApps to the followers' sockets)
// has the disk working meanwhile rather than a microtask later (bench/server/mixed.md,
// session 12).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { nodeDisk } from '../../src/wal/index.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const pendingFsRequests = (): number => process.getActiveResourcesInfo().filter((r) => r === 'FSReqCallback').length;

it('a durable write after the first is issued before writeDurable returns', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nodedisk-'));
  dirs.push(dir);
  const file = await nodeDisk.open(path.join(dir, 'f'), 'create');
  try {
    await file.writeDurable(new TextEncoder().encode('first '), 0);
    const before = pendingFsRequests();
    const written = file.writeDurable(new TextEncoder().encode('second'), 6);
    expect(pendingFsRequests()).toBe(before + 1);
    expect(await written).toBe(6);
    expect(readFileSync(path.join(dir, 'f'), 'utf8')).toBe('first second');
  } finally {
    await file.close();
  }
});
