// --enable-pprof: /debug/pprof/ on the client URLs, as etcd serves Go's net/http/pprof
// there, with the profiles a Node process has. `go tool pprof URL/debug/pprof/profile`
// gets a CPU profile of the member's main thread (V8's sampling profiler, for ?seconds=,
// 30 by default) and `go tool pprof URL/debug/pprof/heap` what is live on its JS heap,
// by the stack that allocated it (V8's sampling heap profiler, running from the start as
// Go's runtime samples from its start); /debug/pprof/cmdline is the command line.
// Go's goroutine, thread, block, mutex and trace profiles have no Node counterpart:
// those names get Go's 404 "Unknown profile". Worker threads are not profiled.

import type http from 'node:http';
import { Session } from 'node:inspector/promises';
import type { Route } from './handler.js';
import { type CpuProfile, type HeapProfile, cpuProfileToPprof, heapProfileToPprof } from './pprof-profile.js';

export const PPROF_PREFIX = '/debug/pprof';

/** Go's runtime.MemProfileRate: a heap sample every 512 KiB allocated, on average. */
const HEAP_SAMPLING_BYTES = 512 * 1024;
/** V8's own default tick (Go's CPU profile ticks every 10 ms), for profiles of up to MAX_CPU_TICKS ticks. */
const CPU_SAMPLING_US = 1000;
/**
 * V8 keeps every tick of a profile (16 bytes each) until it stops, where Go adds them up
 * as it goes: a longer profile ticks less often, so that ?seconds=86400 costs no more
 * memory than ~2 minutes at the default tick.
 */
const MAX_CPU_TICKS = 120_000;
const DEFAULT_CPU_SECONDS = 30;

/** The CPU profile's tick for a profile of `seconds`, in µs. */
export function cpuTickUs(seconds: number): number {
  return Math.max(CPU_SAMPLING_US, Math.ceil((seconds * 1_000_000) / MAX_CPU_TICKS));
}

/** This process's profilers, through an inspector session of its own. */
export class ProcessProfiler {
  private readonly session = new Session();
  private cpuBusy = false;
  /** why the heap profiler could not start (a Node built without the inspector), if it could not */
  private heapUnavailable: string | undefined;
  private readonly heapStarted: Promise<void>;

  constructor() {
    this.session.connect();
    this.heapStarted = this.session.post('HeapProfiler.startSampling', { samplingInterval: HEAP_SAMPLING_BYTES }).then(
      () => undefined,
      (err: unknown) => {
        this.heapUnavailable = err instanceof Error ? err.message : String(err);
      },
    );
  }

  /**
   * Samples the main thread for `seconds`, or until `cancelled` resolves (the client went).
   * Throws "cpu profiling already in use" while another profile runs, as Go does.
   */
  async cpu(seconds: number, cancelled: Promise<void>): Promise<Buffer | undefined> {
    if (this.cpuBusy) throw new Error('cpu profiling already in use');
    this.cpuBusy = true;
    try {
      const intervalUs = cpuTickUs(seconds);
      await this.session.post('Profiler.enable');
      await this.session.post('Profiler.setSamplingInterval', { interval: intervalUs });
      await this.session.post('Profiler.start');
      const startedAtMs = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const gone = await Promise.race([
        new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), seconds * 1000).unref())),
        cancelled.then(() => true),
      ]);
      clearTimeout(timer);
      const { profile } = (await this.session.post('Profiler.stop')) as { profile: CpuProfile };
      await this.session.post('Profiler.disable');
      return gone ? undefined : cpuProfileToPprof(profile, intervalUs, startedAtMs);
    } finally {
      this.cpuBusy = false;
    }
  }

  /** What is live on the heap now, as sampled since the start; `gc` collects garbage first. */
  async heap(gc: boolean): Promise<Buffer> {
    await this.heapStarted;
    if (this.heapUnavailable !== undefined) throw new Error(this.heapUnavailable);
    if (gc) await this.session.post('HeapProfiler.collectGarbage');
    const { profile } = (await this.session.post('HeapProfiler.getSamplingProfile')) as { profile: HeapProfile };
    return heapProfileToPprof(profile, HEAP_SAMPLING_BYTES);
  }

  close(): void {
    this.session.disconnect();
  }
}

/** The /debug/pprof route; `argv` is what /debug/pprof/cmdline answers (the program, then its arguments). */
export function pprofRoute(profiler: ProcessProfiler, argv: readonly string[]): Route {
  return {
    prefix: PPROF_PREFIX,
    handler: (req, res) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname === PPROF_PREFIX) {
        // Go's ServeMux sends the path without its slash to the subtree
        res.writeHead(301, { Location: `${PPROF_PREFIX}/` });
        res.end();
        return;
      }
      if (!url.pathname.startsWith(`${PPROF_PREFIX}/`)) return serveError(res, 404, '404 page not found');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      const name = url.pathname.slice(PPROF_PREFIX.length + 1);
      switch (name) {
        case '':
          res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
          res.end(INDEX);
          return;
        case 'cmdline':
          res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
          res.end(argv.join('\0'));
          return;
        case 'profile':
          void serveCpu(profiler, req, res, url);
          return;
        case 'heap':
          void serveHeap(profiler, res, url);
          return;
        default:
          serveError(res, 404, 'Unknown profile');
      }
    },
  };
}

async function serveCpu(profiler: ProcessProfiler, req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
  // as Go: anything but a positive whole number of seconds means the default
  const asked = Number(url.searchParams.get('seconds') ?? '');
  const seconds = Number.isSafeInteger(asked) && asked > 0 ? asked : DEFAULT_CPU_SECONDS;
  const cancelled = new Promise<void>((resolve) => res.once('close', () => resolve()));
  let profile: Buffer | undefined;
  try {
    profile = await profiler.cpu(seconds, cancelled);
  } catch (err) {
    return serveError(res, 500, `Could not enable CPU profiling: ${(err as Error).message}`);
  }
  if (profile === undefined || req.destroyed) return;
  sendProfile(res, 'profile', profile);
}

async function serveHeap(profiler: ProcessProfiler, res: http.ServerResponse, url: URL): Promise<void> {
  const seconds = url.searchParams.get('seconds');
  if (seconds !== null && seconds !== '') {
    if (!/^\d+$/.test(seconds) || Number(seconds) <= 0) return serveError(res, 400, 'invalid value for "seconds" - must be a positive integer');
    // Go takes the difference of two heap profiles; V8's has no allocation counts to subtract
    return serveError(res, 400, '"seconds" parameter is not supported for this profile type');
  }
  let profile: Buffer;
  try {
    profile = await profiler.heap(Number(url.searchParams.get('gc') ?? '0') > 0);
  } catch (err) {
    return serveError(res, 500, `Could not read the heap profile: ${(err as Error).message}`);
  }
  sendProfile(res, 'heap', profile);
}

function sendProfile(res: http.ServerResponse, name: string, profile: Buffer): void {
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Disposition': `attachment; filename="${name}"` });
  res.end(profile);
}

/** Go's serveError: the text on a line of its own, marked as pprof's. */
function serveError(res: http.ServerResponse, status: number, text: string): void {
  if (res.headersSent) return void res.destroy();
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Go-Pprof': '1' });
  res.end(`${text}\n`);
}

const INDEX = `<html>
<head>
<title>/debug/pprof/</title>
</head>
<body>
/debug/pprof/<br>
<br>
Types of profiles available (etcd-ts runs on Node.js: its main thread and JS heap):
<ul>
<li><a href="heap">heap</a>: bytes live on the JS heap, by the stack that allocated them (sampled every 512 KiB). Add ?gc=1 to collect garbage first.</li>
<li><a href="profile">profile</a>: CPU profile of the main thread. ?seconds= sets its length (30 by default). Read either with go tool pprof.</li>
<li><a href="cmdline">cmdline</a>: the command line, arguments separated by NUL bytes.</li>
</ul>
</body>
</html>
`;
