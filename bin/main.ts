// etcd-ts's command line, a thin layer over startEtcd as etcdmain is over embed:
// read the configuration, start the member, tell systemd when it serves clients, stop
// cleanly on SIGTERM/SIGINT. Exit codes as etcd: 2 for flag syntax, 1 for anything
// that stops the start or the member, 0 after a requested shutdown.

import v8 from 'node:v8';
import { DEFAULT_IDLE_GC, startIdleGc } from '../src/pkg/idle-gc.js';
import { startMemoryReport } from '../src/pkg/memory-report.js';
import { nativeHeapTrimmer } from '../src/pkg/native-heap.js';
import { parseCommandLine } from '../src/server/config/index.js';
import type { Etcd } from '../src/server/etcd.js';
import { createLogger, moduleLogger, type Logger } from '../src/server/logger.js';
import { notify, notifyReady } from '../src/server/systemd.js';
import { START_STEPS, type StartStep } from '../src/server/start-steps.js';

/**
 * How far V8 lets the old generation grow past what the last full GC left, in percent.
 * Left to itself V8 grows it up to 4× while the mutator is busy, and Node never runs the
 * GC that would give it back once the load stops: after 100 k lease grants the member sat
 * on ~200 MB of garbage (bench/memory). A fixed 2× keeps that near half (98 MB against
 * 178 MB per 100 k leases) and lets puts run with a full GC every few thousand, not every
 * few hundred: 1.2× cost a third more CPU per put at 64 and 256 clients for 40 MB less
 * RSS after the load (bench/server/profiles.md, "The heap cap, again"). Set per process,
 * so only the command line does it; an embedding program keeps its own GC settings. (The
 * young generation's bound V8 reads only as the process starts: bin/etcd-ts passes it.)
 * ETCDTS_HEAP_GROWING_PERCENT overrides it (0: V8's own); not ETCD_*, which is etcd's flag
 * namespace.
 */
const HEAP_GROWING_PERCENT = Number(process.env.ETCDTS_HEAP_GROWING_PERCENT ?? 100);
if (HEAP_GROWING_PERCENT > 0) v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);

/**
 * One full GC once the member has gone idle after a load, which gives V8's young
 * generation and its old space's free pages back (src/pkg/idle-gc.ts), then a trim of
 * malloc's free memory (src/pkg/native-heap.ts). Per process, as above;
 * ETCDTS_IDLE_GC=0 turns it off.
 */
const IDLE_GC = process.env.ETCDTS_IDLE_GC !== '0';

/**
 * For debugging and bench/memory only: ETCDTS_MEMORY_REPORT=<file> makes SIGUSR2 append
 * where the RSS is (mappings, V8's spaces, malloc's arenas) to <file>
 * (src/pkg/memory-report.ts). Unset, nothing is installed.
 */
const MEMORY_REPORT = process.env.ETCDTS_MEMORY_REPORT;
if (MEMORY_REPORT) startMemoryReport(MEMORY_REPORT);

const SHUTDOWN_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/**
 * For crash tests only: ETCDTS_TEST_KILL_AT=<step> (one of START_STEPS in
 * src/server/start-steps.ts) makes the member SIGKILL itself right after that step of its
 * start, as a kill -9 or a power cut there would stop it; the next start on the data dir
 * shows what it continues from (test/e2e/first-start-crash.test.ts).
 */
const TEST_KILL_AT = 'ETCDTS_TEST_KILL_AT';

function killAtStep(value: string | undefined): ((step: StartStep) => void) | undefined {
  if (value === undefined || value === '') return undefined;
  if (!(START_STEPS as readonly string[]).includes(value)) {
    process.stderr.write(`${TEST_KILL_AT}=${JSON.stringify(value)} is not a start step (one of ${START_STEPS.join(', ')})\n`);
    process.exit(1);
  }
  return (step) => {
    if (step !== value) return;
    // stderr is a pipe or a file: written synchronously, so the line is out before the kill
    process.stderr.write(`${TEST_KILL_AT}: killing the member after start step ${step}\n`);
    process.kill(process.pid, 'SIGKILL');
  };
}

export async function run(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Promise<void> {
  // the other modes' code is loaded only for them: a member never needs it
  if (argv[0] === 'gateway') return (await import('./gateway.js')).runGateway(argv.slice(1));
  if (argv[0] === 'grpc-proxy') return (await import('./grpc-proxy.js')).runGrpcProxy(argv.slice(1));
  const parsed = parseCommandLine(argv, env);
  if (parsed.kind === 'exit') {
    if (parsed.stdout) process.stdout.write(parsed.stdout);
    if (parsed.stderr) process.stderr.write(parsed.stderr);
    process.exit(parsed.code);
  }
  const { config } = parsed;
  const onStartStep = killAtStep(env[TEST_KILL_AT]);

  let root: Logger;
  try {
    root = createLogger(config);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
  const log = moduleLogger(root, 'etcdmain/main.ts');
  for (const n of parsed.notices) log.info(n);
  for (const w of parsed.warnings) log.warn(w);

  // Handlers go in before the start so a signal during bootstrap still shuts down cleanly.
  let etcd: Etcd | undefined;
  let stopping = false;
  for (const signal of SHUTDOWN_SIGNALS) {
    process.on(signal, () => {
      if (stopping) {
        log.warn({ signal }, 'received signal again; exiting without waiting for shutdown');
        process.exit(1);
      }
      stopping = true;
      log.info({ signal }, 'received signal; shutting down');
      notify('STOPPING=1', { env, logger: moduleLogger(root, 'etcdmain/systemd.ts') });
      if (etcd === undefined) return; // the start below sees `stopping` and closes
      etcd.close().then(
        () => process.exit(0),
        (err: unknown) => fatal(log, 'failed to shut down cleanly', err),
      );
    });
  }

  try {
    // Loaded only now: --help, --version and flag errors need none of the server.
    const { startEtcd } = await import('../src/server/etcd.js');
    etcd = await startEtcd(config, { logger: root, onStartStep });
  } catch (err) {
    fatal(log, 'failed to start etcd', err);
  }
  if (stopping) {
    await etcd.close().catch((err: unknown) => fatal(log, 'failed to shut down cleanly', err));
    process.exit(0);
  }

  if (IDLE_GC) {
    const gcLog = moduleLogger(root, 'pkg/idle-gc.ts');
    const trimLog = moduleLogger(root, 'pkg/native-heap.ts');
    startIdleGc({
      ...DEFAULT_IDLE_GC,
      onCollect: (before, after) => {
        gcLog.debug({ 'young-before': before, 'young-after': after }, 'collected garbage while idle');
        // the load's free chunks inside malloc's arenas (13-43 MB after bench:server's
        // load, bench/memory/README.md), and what the GC just freed: returned while idle,
        // so no request pays for it
        nativeHeapTrimmer.request('idle', trimLog);
      },
    });
  }
  etcd.ready.then(
    () => notifyReady({ env, logger: moduleLogger(root, 'etcdmain/systemd.ts') }),
    () => undefined, // a member that never becomes ready ends through `done`
  );
  const err = await etcd.done;
  if (err !== undefined) fatal(log, 'etcd server stopped', err);
  process.exit(0);
}

function fatal(log: Logger, msg: string, err: unknown): never {
  log.fatal({ error: err instanceof Error ? err.message : String(err) }, msg);
  process.exit(1);
}
