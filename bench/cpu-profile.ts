// Reading the .cpuprofile `node --cpu-prof` writes as the process exits: self time per
// function, over the whole profile or a window of it.

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

export interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  /** µs between consecutive samples, the first one from startTime */
  timeDeltas: number[];
  /** µs, on the profiled process's monotonic clock */
  startTime: number;
  endTime: number;
}

/** The one profile `node --cpu-prof --cpu-prof-dir dir` wrote, and its path. */
export function readProfile(dir: string): { file: string; profile: Profile } {
  const name = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (name === undefined) throw new Error(`no profile written in ${dir}`);
  const file = path.join(dir, name);
  return { file, profile: JSON.parse(readFileSync(file, 'utf8')) as Profile };
}

/**
 * Self samples per function (name + file:line), as a share of the non-idle samples, taken
 * between `window.fromEnd` and `window.toEnd` seconds before the profile's end (default:
 * all of it); `busySeconds` is the CPU time those busy samples stand for.
 */
export function selfTime(profile: Profile, window?: { fromEnd: number; toEnd: number }): { busySeconds: number; rows: Array<{ name: string; share: number }> } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const counts = new Map<string, number>();
  const from = window === undefined ? -Infinity : profile.endTime - window.fromEnd * 1e6;
  const to = window === undefined ? Infinity : profile.endTime - window.toEnd * 1e6;
  let t = profile.startTime;
  let busyMicros = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (t < from || t > to) return;
    const f = byId.get(id)!.callFrame;
    const where = f.url === '' ? '' : ` ${f.url.replace(/^.*\/(node_modules|dist|internal)\//, '$1/').replace(/^node:/, '')}:${f.lineNumber + 1}`;
    const name = `${f.functionName || '(anonymous)'}${where}`;
    counts.set(name, (counts.get(name) ?? 0) + 1);
    if (name !== '(idle)') busyMicros += delta;
  });
  // Shares of the time the member was busy: idle time depends on the load client.
  const total = [...counts.values()].reduce((a, b) => a + b, 0) - (counts.get('(idle)') ?? 0);
  counts.delete('(idle)');
  const rows = [...counts.entries()].map(([name, n]) => ({ name, share: n / total })).sort((a, b) => b.share - a.share);
  return { busySeconds: busyMicros / 1e6, rows };
}
