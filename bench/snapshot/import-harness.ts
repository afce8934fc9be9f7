// The first start's import of etcd's bbolt file into a LevelDB store (importBoltDb), in a
// process of its own per run, for two checkouts alternating in the same run: wall time
// and CPU seconds, all threads (process.cpuUsage) and the main thread alone
// (/proc/self/task/PID/stat), which the load of a shared machine moves far less than
// wall time.
//
//   npx tsx bench/snapshot/import-harness.ts --file backup.db [--rounds 3] [--roots base=/tmp/base,new=.]
//       [--heap-growing-percent N]
//
// backup.db: any bbolt file etcd or etcd-ts wrote (`etcdctl snapshot save`, or
// save-harness.ts --keep). Each checkout is used as its sources are (tsx), so a base
// needs no build: `git archive <commit> | tar -x -C /tmp/base` and a node_modules link.
// --heap-growing-percent runs the import under V8's flag of that name, as a member whose
// command line set it before its start (bin/main.ts) did.

import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as BoltImport from '../../src/server/import/bolt-import.js';
import { arg } from '../member.js';

const TICKS_PER_SECOND = 100;

function mainThreadCpu(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** One import with the checkout at `root`, in this process; prints one JSON line. */
async function child(root: string, file: string): Promise<void> {
  const { importBoltDb } = (await import(pathToFileURL(path.resolve(root, 'src/server/import/bolt-import.ts')).href)) as typeof BoltImport;
  const dir = path.join(os.tmpdir(), `import-harness-${process.pid}`);
  const log = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };
  const cpu0 = process.cpuUsage();
  const main0 = mainThreadCpu();
  const t0 = performance.now();
  try {
    const summary = await importBoltDb(file, dir, log as never);
    const cpu = process.cpuUsage(cpu0);
    console.log(
      JSON.stringify({
        wall: (performance.now() - t0) / 1000,
        all: (cpu.user + cpu.system) / 1e6,
        main: mainThreadCpu() - main0,
        revisions: summary?.records.key ?? 0,
        load: os.loadavg()[0],
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(`${dir}.import`, { recursive: true, force: true });
  }
}

function parent(): void {
  const file = path.resolve(arg('file', ''));
  if (file === '') throw new Error('--file: a bbolt file to import');
  const rounds = Number(arg('rounds', '3'));
  const growing = arg('heap-growing-percent', '');
  const flags = growing === '' ? [] : [`--heap-growing-percent=${growing}`];
  const roots = arg('roots', 'new=.')
    .split(',')
    .map((s) => s.split('=') as [string, string]);
  for (let round = 0; round < rounds; round++) {
    for (const [label, root] of roots.map((_, i) => roots[(i + round) % roots.length]!)) {
      const out = execFileSync(process.execPath, [...flags, '--import', 'tsx', process.argv[1]!, '--child', root, '--file', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      const r = JSON.parse(out.trim().split('\n').at(-1)!) as { wall: number; all: number; main: number; revisions: number; load: number };
      console.log(`round ${round}  ${label.padEnd(6)} wall ${r.wall.toFixed(2)} s  CPU all ${r.all.toFixed(2)} s  main thread ${r.main.toFixed(2)} s  ${r.revisions} revisions  load ${r.load.toFixed(1)}`);
    }
  }
}

const childRoot = arg('child', '');
if (childRoot !== '') {
  child(childRoot, path.resolve(arg('file', ''))).catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else {
  parent();
}
