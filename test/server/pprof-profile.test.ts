// V8 profiles made into pprof's: what each sample's stack and values are, read back with
// the format's decoder (test/e2e/pprof.test.ts has Go's own reader on real profiles).

import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { describe, expect, it } from 'vitest';
import { type CallFrame, cpuProfileToPprof, heapProfileToPprof } from '../../src/server/http/pprof-profile.js';
import { cpuTickUs } from '../../src/server/http/pprof.js';

const frame = (functionName: string, lineNumber = 0, url = 'file:///app.js'): CallFrame => ({ functionName, url, lineNumber });

/** Each sample as its stack of function names (leaf first) and its values. */
function samplesOf(encoded: Buffer): Array<{ stack: string[]; values: number[] }> {
  const p = Profile.decode(gunzipSync(encoded));
  const str = (i: unknown) => p.stringTable.strings[Number(i)]!;
  const fnName = new Map(p.function.map((f) => [Number(f.id), str(f.name)]));
  const locName = new Map(p.location.map((l) => [Number(l.id), fnName.get(Number(l.line[0]!.functionId))!]));
  return p.sample
    .map((s) => ({ stack: s.locationId.map((id) => locName.get(Number(id))!), values: s.value.map(Number) }))
    .sort((a, b) => a.stack.join().localeCompare(b.stack.join()));
}

describe('cpuProfileToPprof', () => {
  it('counts ticks per stack, leaf first, without V8 root or idle ticks', () => {
    const encoded = cpuProfileToPprof(
      {
        nodes: [
          { id: 1, callFrame: frame('(root)'), children: [2, 5, 6] },
          { id: 2, callFrame: frame('main', 3), children: [3, 4] },
          { id: 3, callFrame: frame('put', 10) },
          { id: 4, callFrame: frame('') },
          { id: 5, callFrame: frame('(idle)') },
          { id: 6, callFrame: frame('(garbage collector)') },
        ],
        startTime: 5_000_000,
        endTime: 7_000_000,
        samples: [3, 3, 5, 5, 5, 4, 2, 6],
      },
      1000,
      1_700_000_000_000,
    );
    expect(samplesOf(encoded)).toEqual([
      { stack: ['(anonymous)', 'main'], values: [1, 1_000_000] },
      { stack: ['(garbage collector)'], values: [1, 1_000_000] },
      { stack: ['main'], values: [1, 1_000_000] },
      { stack: ['put', 'main'], values: [2, 2_000_000] },
    ]);
    const p = Profile.decode(gunzipSync(encoded));
    expect([Number(p.durationNanos), Number(p.timeNanos), Number(p.period)]).toEqual([2e9, 1.7e18, 1_000_000]);
    // one function per name, file and line: main's two locations share it
    expect(p.function.map((f) => p.stringTable.strings[Number(f.name)])).toEqual(['put', 'main', '(anonymous)', '(garbage collector)']);
    expect(p.function.find((f) => p.stringTable.strings[Number(f.name)] === 'put')!.startLine).toBe(11);
  });
});

describe('cpuTickUs', () => {
  it('ticks every millisecond up to two minutes, then less often, so a long profile holds no more ticks', () => {
    expect([30, 120, 600, 86_400].map(cpuTickUs)).toEqual([1000, 1000, 5000, 720_000]);
  });
});

describe('heapProfileToPprof', () => {
  it('gives each allocating stack its live bytes, and none to frames that only call', () => {
    const encoded = heapProfileToPprof(
      {
        head: {
          callFrame: frame('(root)'),
          selfSize: 0,
          children: [
            {
              callFrame: frame('main'),
              selfSize: 0,
              children: [
                { callFrame: frame('cache'), selfSize: 4096, children: [] },
                { callFrame: frame('decode'), selfSize: 512, children: [{ callFrame: frame('Buffer'), selfSize: 100, children: [] }] },
              ],
            },
          ],
        },
      },
      524288,
    );
    expect(samplesOf(encoded)).toEqual([
      { stack: ['Buffer', 'decode', 'main'], values: [100] },
      { stack: ['cache', 'main'], values: [4096] },
      { stack: ['decode', 'main'], values: [512] },
    ]);
  });
});
