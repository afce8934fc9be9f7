// Where a member's RSS is, on request: for debugging and for bench/memory only.
// `ETCDTS_MEMORY_REPORT=<file>` (read by bin/main.ts; nothing is set up without it) makes
// SIGUSR2 append one JSON line to <file>: the RSS split as the kernel counts it
// (/proc/self/smaps, summed by what is mapped), V8's heap spaces, Node's
// process.memoryUsage() and glibc's mallinfo2(), first as found, then after one full GC,
// so that garbage, live JS objects, ArrayBuffers and native memory (LevelDB, malloc's
// arenas) can be told apart. A member started without the variable never reads any of it.

import { appendFileSync, readFileSync } from 'node:fs';
import v8 from 'node:v8';
import { gcFunction } from './idle-gc.js';
import { loadLibc } from './libc.js';

const MB = 1024 * 1024;
const mb = (bytes: number): number => Math.round((bytes / MB) * 10) / 10;

/** Resident kB per kind of mapping, from /proc/self/smaps. */
export interface MappingRss {
  /** the node executable's own pages (its code, V8's snapshot, ICU's data) */
  nodeBinary: number;
  /** shared libraries and native addons (.so, .node: classic-level's LevelDB, koffi) */
  libraries: number;
  /** LevelDB's table files, which it maps to read */
  levelDbFiles: number;
  /** any other file (the bundle is read, not mapped: it shows as heap) */
  otherFiles: number;
  /** glibc's main arena (the brk heap): the main thread's mallocs, ArrayBuffers among them */
  brkHeap: number;
  /** the main thread's stack */
  stack: number;
  /** anonymous mappings: V8's heap pages, other threads' malloc arenas and stacks, large mallocs */
  anonymous: number;
}

/** Sums each mapping's Rss line by the kind of its path. */
export function rssByMapping(smaps: string): MappingRss {
  const out: MappingRss = { nodeBinary: 0, libraries: 0, levelDbFiles: 0, otherFiles: 0, brkHeap: 0, stack: 0, anonymous: 0 };
  let kind: keyof MappingRss = 'anonymous';
  for (const line of smaps.split('\n')) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      kind = mappingKind(header[1]!);
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) out[kind] += Number(rss[1]);
  }
  return out;
}

function mappingKind(path: string): keyof MappingRss {
  if (path === '') return 'anonymous';
  if (path === '[heap]') return 'brkHeap';
  if (path === '[stack]') return 'stack';
  if (path.startsWith('[')) return 'anonymous'; // [vdso], [vvar], [anon:...]
  if (path === process.execPath) return 'nodeBinary';
  if (/\.so(\.|$)|\.node$/.test(path)) return 'libraries';
  if (/\.(ldb|sst|log)$/.test(path)) return 'levelDbFiles';
  return 'otherFiles';
}

type MallInfo = { arenaBytes: number; inUse: number; free: number; mmapped: number };
let mallinfo2: (() => MallInfo) | null | undefined;

/** glibc's mallinfo2() over all arenas, or null without glibc. */
function mallocInfo(): MallInfo | null {
  if (mallinfo2 === undefined) {
    try {
      const { koffi, lib } = loadLibc();
      const struct = koffi.struct('mallinfo2_rss', {
        arena: 'size_t', ordblks: 'size_t', smblks: 'size_t', hblks: 'size_t', hblkhd: 'size_t',
        usmblks: 'size_t', fsmblks: 'size_t', uordblks: 'size_t', fordblks: 'size_t', keepcost: 'size_t',
      });
      const fn = lib.func('mallinfo2', struct, []);
      mallinfo2 = () => {
        const r = fn() as Record<string, number | bigint>;
        const n = (k: string) => Number(r[k]);
        return { arenaBytes: n('arena'), inUse: n('uordblks'), free: n('fordblks'), mmapped: n('hblkhd') };
      };
    } catch {
      mallinfo2 = null;
    }
  }
  return mallinfo2 === null ? null : mallinfo2();
}

/** One reading, in MB. */
export function memorySnapshot(): Record<string, unknown> {
  const smaps = rssByMapping(readFileSync('/proc/self/smaps', 'utf8'));
  const mallinfo = mallocInfo();
  return {
    rss: mb(process.memoryUsage.rss()),
    mappings: Object.fromEntries(Object.entries(smaps).map(([k, kb]) => [k, mb((kb as number) * 1024)])),
    // each space: [used, committed, resident]
    v8: Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, [mb(s.space_used_size), mb(s.space_size), mb(s.physical_space_size)]])),
    node: Object.fromEntries(Object.entries(process.memoryUsage()).map(([k, v]) => [k, mb(v)])),
    malloc: mallinfo && Object.fromEntries(Object.entries(mallinfo).map(([k, v]) => [k, mb(v)])),
  };
}

/** Appends a report to `file` on each SIGUSR2; returns the stop. */
export function startMemoryReport(file: string): () => void {
  const onSignal = () => {
    const found = memorySnapshot();
    gcFunction()();
    appendFileSync(file, `${JSON.stringify({ at: new Date().toISOString(), pid: process.pid, found, afterGc: memorySnapshot() })}\n`);
  };
  process.on('SIGUSR2', onSignal);
  return () => process.off('SIGUSR2', onSignal);
}
