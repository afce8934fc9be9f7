// V8's profiles in pprof's format (profile.proto, gzipped), the format etcd's
// /debug/pprof/ serves and `go tool pprof` reads: a CPU profile from V8's sampling CPU
// profiler and a heap profile from its sampling heap profiler. Each V8 call frame is a
// pprof location with one line; a stack is the frames from the sampled one up to (not
// including) V8's root.

import { gzipSync } from 'node:zlib';
import { Function as PprofFunction, Location, Profile, Sample, StringTable, ValueType } from 'pprof-format';

/** A V8 call frame as the inspector reports it (lines 0-based). */
export interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

/** The inspector's Profiler.Profile. */
export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: CallFrame; children?: number[] }>;
  /** µs on V8's monotonic clock */
  startTime: number;
  endTime: number;
  /** the node sampled at each tick */
  samples?: number[];
}

/** The inspector's HeapProfiler.SamplingHeapProfile (its sizes already scaled to estimates of all allocations). */
export interface HeapProfile {
  head: HeapNode;
}

export interface HeapNode {
  callFrame: CallFrame;
  /** bytes still live that were allocated right here */
  selfSize: number;
  children: HeapNode[];
}

/** V8 samples the thread while it waits for work as this frame: not CPU time. */
const IDLE = '(idle)';

/** Builds the functions, locations and strings of one profile, a location per call frame. */
class FrameTable {
  readonly strings = new StringTable();
  readonly functions: PprofFunction[] = [];
  readonly locations: Location[] = [];
  private readonly functionIds = new Map<string, number>();

  /** The location of `frame` (new each call: each V8 node is its own frame in its own stack). */
  location(frame: CallFrame): number {
    const name = frame.functionName === '' ? '(anonymous)' : frame.functionName;
    const line = frame.lineNumber + 1;
    const key = `${name}\0${frame.url}\0${line}`;
    let functionId = this.functionIds.get(key);
    if (functionId === undefined) {
      functionId = this.functions.length + 1;
      this.functionIds.set(key, functionId);
      this.functions.push(
        new PprofFunction({
          id: functionId,
          name: this.strings.dedup(name),
          systemName: this.strings.dedup(name),
          filename: this.strings.dedup(frame.url),
          startLine: line,
        }),
      );
    }
    const id = this.locations.length + 1;
    this.locations.push(new Location({ id, line: [{ functionId, line }] }));
    return id;
  }
}

/**
 * A CPU profile: per stack, how many ticks sampled it and the CPU time they stand for
 * (a tick for every `intervalUs`, as Go counts one for every 10 ms). `startedAtMs`: when
 * it started, on the wall clock.
 */
export function cpuProfileToPprof(p: CpuProfile, intervalUs: number, startedAtMs: number): Buffer {
  const table = new FrameTable();
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const ticks = new Map<number, number>();
  for (const id of p.samples ?? []) ticks.set(id, (ticks.get(id) ?? 0) + 1);

  // a location per V8 node, made as a stack first needs it
  const locationOf = new Map<number, number>();
  const stackOf = (leaf: number): number[] => {
    const stack: number[] = [];
    for (let id: number | undefined = leaf; id !== undefined && parent.has(id); id = parent.get(id)) {
      let loc = locationOf.get(id);
      if (loc === undefined) {
        loc = table.location(byId.get(id)!.callFrame);
        locationOf.set(id, loc);
      }
      stack.push(loc);
    }
    return stack;
  };
  const periodNs = Math.round(intervalUs * 1000);
  const samples: Sample[] = [];
  for (const [id, n] of ticks) {
    // the root is never a sampled frame; idle ticks are no CPU
    if (!parent.has(id) || byId.get(id)!.callFrame.functionName === IDLE) continue;
    samples.push(new Sample({ locationId: stackOf(id), value: [n, n * periodNs] }));
  }
  const s = table.strings;
  const cpuNs = new ValueType({ type: s.dedup('cpu'), unit: s.dedup('nanoseconds') });
  return encode(
    new Profile({
      sampleType: [new ValueType({ type: s.dedup('samples'), unit: s.dedup('count') }), cpuNs],
      sample: samples,
      location: table.locations,
      function: table.functions,
      stringTable: s,
      timeNanos: BigInt(Math.round(startedAtMs)) * 1_000_000n,
      durationNanos: BigInt(Math.round(p.endTime - p.startTime)) * 1000n,
      periodType: cpuNs,
      period: periodNs,
    }),
  );
}

/** A heap profile of what is live: bytes by the stack that allocated them (Go's inuse_space). */
export function heapProfileToPprof(p: HeapProfile, samplingIntervalBytes: number): Buffer {
  const table = new FrameTable();
  const samples: Sample[] = [];
  const walk = (node: HeapNode, stack: readonly number[]): void => {
    const here = [table.location(node.callFrame), ...stack];
    if (node.selfSize > 0) samples.push(new Sample({ locationId: here, value: [node.selfSize] }));
    for (const c of node.children) walk(c, here);
  };
  // the head is V8's root, no frame of its own
  for (const c of p.head.children) walk(c, []);
  const s = table.strings;
  const space = new ValueType({ type: s.dedup('inuse_space'), unit: s.dedup('bytes') });
  return encode(
    new Profile({
      sampleType: [space],
      sample: samples,
      location: table.locations,
      function: table.functions,
      stringTable: s,
      timeNanos: BigInt(Date.now()) * 1_000_000n,
      periodType: new ValueType({ type: s.dedup('space'), unit: s.dedup('bytes') }),
      period: samplingIntervalBytes,
    }),
  );
}

function encode(p: Profile): Buffer {
  return gzipSync(p.encode());
}
