// npm test's closing table (scripts/test-summary.mjs): wall and CPU seconds per test file,
// CPU as test/cpu-seconds.ts logs it from inside each file's worker, and the one last line
// "N passed, M failed".

import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, repoRoot, tempDir } from '../e2e/harness.js';

afterAll(cleanup);

const run = promisify(execFile);

/** Runs test-summary.mjs from the repository root; resolves with its output and exit code. */
async function summary(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run(process.execPath, ['scripts/test-summary.mjs', ...args], { cwd: repoRoot });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, out: e.stdout };
  }
}

/** A vitest JSON report of two files, as `vitest run --reporter=json` writes it. */
function report(failed: number): string {
  const file = (name: string, ms: number, tests: number) => ({
    name: path.join(repoRoot, name),
    startTime: 1_000,
    endTime: 1_000 + ms,
    status: failed > 0 && name.includes('slow') ? 'failed' : 'passed',
    assertionResults: Array.from({ length: tests }, (_, i) =>
      failed > 0 && name.includes('slow') && i === 0
        ? { status: 'failed', fullName: 'a cluster elects a leader', failureMessages: ['AssertionError: expected 0 to be 1\n    at slow.test.ts:9:5'] }
        : { status: 'passed', fullName: `case ${i}`, failureMessages: [] },
    ),
  });
  const json = {
    numPassedTests: 5 - failed,
    numFailedTests: failed,
    numPendingTests: 0,
    numTodoTests: 0,
    testResults: [file('test/a/quick.test.ts', 1_500, 2), file('test/b/slow.test.ts', 90_000, 3)],
  };
  const f = path.join(tempDir(), 'vitest.json');
  writeFileSync(f, JSON.stringify(json));
  return f;
}

describe('scripts/test-summary.mjs', () => {
  it('prints wall and CPU seconds per file, slowest first, their sums, then "N passed, M failed"', async () => {
    const cpu = path.join(tempDir(), 'cpu.jsonl');
    writeFileSync(
      cpu,
      [
        { file: path.join(repoRoot, 'test/a/quick.test.ts'), cpuSeconds: 0.75 },
        { file: path.join(repoRoot, 'test/b/slow.test.ts'), cpuSeconds: 12.5 },
      ]
        .map((l) => `${JSON.stringify(l)}\n`)
        .join(''),
    );
    const { code, out } = await summary([report(0), cpu]);
    expect(code).toBe(0);
    const lines = out.trim().split('\n');
    expect(lines.slice(-4)).toEqual([
      '    90.0    12.5  test/b/slow.test.ts',
      '     1.5     0.8  test/a/quick.test.ts',
      '    91.5    13.3  in all (the run\'s wall time is vitest\'s Duration above)',
      '5 passed, 0 failed',
    ]);
  });

  it('shows "-" where no CPU was logged, names each failed test with its first line, and exits 1', async () => {
    const { code, out } = await summary([report(1)]);
    expect(code).toBe(1);
    expect(out.trim().split('\n').slice(-6)).toEqual([
      '    90.0       -  test/b/slow.test.ts',
      '     1.5       -  test/a/quick.test.ts',
      '    91.5       -  in all (the run\'s wall time is vitest\'s Duration above)',
      'failed:',
      '  test/b/slow.test.ts > a cluster elects a leader: AssertionError: expected 0 to be 1',
      '4 passed, 1 failed',
    ]);
  });
});

describe('test/cpu-seconds.ts', () => {
  it("logs a file's CPU seconds with those of the processes it started", async () => {
    const log = path.join(tempDir(), 'cpu.jsonl');
    await run('npx', ['vitest', 'run', '--config', 'test/scripts/fixtures/cpu.vitest.config.ts'], {
      cwd: repoRoot,
      env: { ...process.env, ETCD_TS_CPU_LOG: log },
    });
    const lines = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { file: string; cpuSeconds: number });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.file).toBe(path.join(repoRoot, 'test/scripts/fixtures/burn.check.ts'));
    // the child's CPU second, which the worker's own CPU time does not include
    expect(lines[0]!.cpuSeconds).toBeGreaterThanOrEqual(1);
  }, 120_000);

  it('charges each file of a shared worker process (isolate: false) its own CPU, not the process total so far', async () => {
    const log = path.join(tempDir(), 'cpu.jsonl');
    await run('npx', ['vitest', 'run', '--config', 'test/scripts/fixtures/cpu-shared.vitest.config.ts'], {
      cwd: repoRoot,
      env: { ...process.env, ETCD_TS_CPU_LOG: log },
    });
    const lines = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { file: string; cpuSeconds: number });
    const fixture = (name: string) => path.join(repoRoot, 'test/scripts/fixtures', name);
    expect(lines.map((l) => l.file)).toEqual([fixture('burn.check.ts'), fixture('idle.check.ts')]);
    // the idle file ran after the burning one in the same process: the CPU second is the burner's
    expect(lines[0]!.cpuSeconds).toBeGreaterThanOrEqual(1);
    expect(lines[1]!.cpuSeconds).toBeLessThan(lines[0]!.cpuSeconds);
  }, 120_000);
});
