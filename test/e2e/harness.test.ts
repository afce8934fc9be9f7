// The e2e harness's killProcesses, as files whose cases each start their own members use
// it from afterEach: a member started in one case does not run on into the next.

import { existsSync } from 'node:fs';
import { afterAll, afterEach, expect, it } from 'vitest';
import { type Member, cleanup, killProcesses, startMember } from './harness.js';

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
