// The e2e harness's killProcesses, as files whose cases each start their own members use
// it from afterEach: a member started in one case does not run on into the next. And its
// freePort, which every member's ports come from.

import { existsSync } from 'node:fs';
import { afterAll, afterEach, expect, it } from 'vitest';
import { type Member, cleanup, freePort, killProcesses, startMember } from './harness.js';

afterAll(cleanup);
afterEach(killProcesses);

let started: Member | undefined;

it('a case starts a member', async () => {
  started = await startMember();
  expect(started.proc.exitCode).toBeNull();
});

it('the next case finds it killed by PID, its data dir left for cleanup', async () => {
  expect(await started!.exited).toBe('SIGKILL');
  expect(existsSync(started!.dataDir)).toBe(true);
});

it('freePort never offers a port twice, nor one of the fixed ports etcd\'s own e2e suite binds (20000 up)', async () => {
  // 3000 of the 17768 ports: without the exclusion, one of the 100 would come up all but surely
  const ports: number[] = [];
  for (let i = 0; i < 3000; i++) ports.push(await freePort());
  expect(new Set(ports).size).toBe(ports.length);
  expect(ports.filter((p) => p >= 20_000 && p <= 20_099)).toEqual([]);
});
