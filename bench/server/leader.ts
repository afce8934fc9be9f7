// Leadership in the benches' clusters: `etcdctl move-leader` to a chosen member.

import { execFileSync } from 'node:child_process';

/** `etcdctl move-leader` to the member at `endpoints[i]`, until it leads (etcdctl finds the current leader among the endpoints). */
export function moveLeaderTo(endpoints: readonly string[], i: number): void {
  // the ID in hex from the simple output: JSON would round the uint64
  const status = (): string[] => execFileSync('etcdctl', ['--endpoints', endpoints[i]!, 'endpoint', 'status']).toString().split(', ');
  const id = status()[1]!;
  for (let attempt = 0; ; attempt++) {
    if (status()[4] === 'true') return;
    if (attempt === 20) throw new Error(`member ${i} (${id}) did not take the lead`);
    try {
      execFileSync('etcdctl', ['--endpoints', endpoints.join(','), 'move-leader', id], { stdio: 'ignore' });
    } catch {
      // a leader still settling: asked again below
    }
    execFileSync('sleep', ['0.5']);
  }
}

/** The index of the endpoint whose member leads now (`endpoint status`: its fifth field says whether it is the leader). */
export function leaderIndex(endpoints: readonly string[]): number {
  for (let attempt = 0; ; attempt++) {
    const lines = execFileSync('etcdctl', ['--endpoints', endpoints.join(','), 'endpoint', 'status']).toString().trim().split('\n');
    const i = endpoints.findIndex((e) => lines.some((l) => l.startsWith(`${e}, `) && l.split(', ')[4] === 'true'));
    if (i >= 0) return i;
    if (attempt === 20) throw new Error('no member leads');
    execFileSync('sleep', ['0.5']);
  }
}
