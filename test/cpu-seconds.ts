// Setup file for every test file (vitest.config.ts): when ETCD_TS_CPU_LOG names a file,
// appends one JSON line per test file with the CPU seconds its worker process and every
// process it started and reaped (members, real etcd, etcdctl) used. scripts/test.sh prints
// them beside each file's wall time: a file whose CPU is far below its wall time spends
// its time waiting (elections, timers), one near it is work the cores have to do.

import { appendFileSync, readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeEach } from 'vitest';

const log = process.env.ETCD_TS_CPU_LOG;
/** When set, one line per test case as well: where a file's CPU goes (bench/suite/README.md). */
const caseLog = process.env.ETCD_TS_CPU_CASE_LOG;
/** Clock ticks per second of /proc's times: USER_HZ, 100 on every Linux architecture vitest runs on. */
const USER_HZ = 100;

/** utime + stime + cutime + cstime of this process, from /proc/self/stat; undefined off Linux. */
function cpuSeconds(): number | undefined {
  let stat: string;
  try {
    stat = readFileSync('/proc/self/stat', 'utf8');
  } catch {
    return undefined;
  }
  // the fields after the command name (which may hold spaces) start at "state", field 3
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [utime, stime, cutime, cstime] = fields.slice(11, 15).map(Number) as [number, number, number, number];
  return (utime + stime + cutime + cstime) / USER_HZ;
}

/**
 * Where the previous test file run in this process ended, in CPU seconds. Files of a project
 * with `isolate: false` (vitest.config.ts) share their worker process, one after the other,
 * and this setup file runs again for each in the same global scope: each file is charged
 * what the process used since the previous one ended (its setup and imports included), and
 * the first file of a process its start as well, as an isolated file is.
 */
const shared = globalThis as { etcdTsCpuAtLastFile?: number };

if (log !== undefined && log !== '') {
  // registered before the test file's own hooks, so it runs after them (vitest runs after-hooks
  // in reverse): the file's cleanup has killed and reaped its processes by then
  afterAll(({}, file) => {
    const seconds = cpuSeconds();
    if (seconds === undefined) return;
    const since = shared.etcdTsCpuAtLastFile ?? 0;
    shared.etcdTsCpuAtLastFile = seconds;
    appendFileSync(log, `${JSON.stringify({ file: 'filepath' in file ? file.filepath : file.name, cpuSeconds: Math.round((seconds - since) * 100) / 100 })}\n`);
  });
}

if (caseLog !== undefined && caseLog !== '') {
  let atStart = 0;
  beforeEach(() => {
    atStart = cpuSeconds() ?? 0;
  });
  // the case's own afterEach hooks (killing its members) run before this one
  afterEach(({ task }) => {
    const seconds = cpuSeconds();
    if (seconds !== undefined) appendFileSync(caseLog, `${JSON.stringify({ file: task.file.filepath, test: task.name, cpuSeconds: Math.round((seconds - atStart) * 100) / 100 })}\n`);
  });
}
