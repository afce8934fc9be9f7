// The timeline of forwarded puts read off a leader's `strace -f -ttt -yy` (put-timeline.ts
// --strace / --etcd-strace): the same steps for an etcd-ts leader and an etcd leader, from
// the syscalls alone, so that the two can be set side by side (strace slows both alike).
//
// A put starts when the leader reads a large message (the MsgProp, with its value) from a
// follower; then, per follower, the MsgApp written (a large write), its MsgAppResp read (a
// small read), the WAL write issued and durable (etcd: write + fdatasync; etcd-ts: one
// pwrite64 on an O_DSYNC descriptor) and the commit written (the next small write) to the
// follower that forwarded the put — which answers its client once it has it.

import { readFileSync } from 'node:fs';

interface Call {
  name: string;
  desc: string;
  start: number;
  end: number;
  ret: number;
}

/** Reads an strace -f -ttt -yy file into completed calls (unfinished ... resumed pairs joined). */
function parseStrace(file: string): Call[] {
  const calls: Call[] = [];
  const pending = new Map<string, { name: string; desc: string; start: number }>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^(\d+)\s+(\d+\.\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, pid, ts, rest] = m as unknown as [string, string, string, string];
    const t = Number(ts) * 1000;
    const ret = /\)\s+=\s+(-?\d+)/.exec(rest);
    const resumed = /^<\.\.\. (\w+) resumed>/.exec(rest);
    if (resumed) {
      const p = pending.get(pid);
      pending.delete(pid);
      if (p && ret) calls.push({ ...p, end: t, ret: Number(ret[1]) });
      continue;
    }
    const call = /^(\w+)\(\d+<(TCP:\[[^\]]*\]|[^>]*)>/.exec(rest);
    if (!call) continue;
    if (rest.endsWith('<unfinished ...>')) pending.set(pid, { name: call[1]!, desc: call[2]!, start: t });
    else if (ret) calls.push({ name: call[1]!, desc: call[2]!, start: t, end: t, ret: Number(ret[1]) });
  }
  return calls;
}

export interface Peers {
  /** the leader's peer port (followers dial it: the leader writes to them there) */
  readonly leaderPeerPort: number;
  /** follower name by its peer port (the leader dials it: it reads from them there) */
  readonly byPeerPort: ReadonlyMap<number, string>;
  /** follower name by the local port of a connection it dialled (from `ss -tnp`) */
  readonly byDialPort: ReadonlyMap<number, string>;
}

const BIG = 200;
const WRITES = new Set(['write', 'writev', 'sendmsg', 'sendto']);

/** p50 and p90 of each step after the MsgProp was read (ms), and how many puts had it. */
export function straceTimeline(file: string, peers: Peers, fromMs: number, toMs: number): string[] {
  const calls = parseStrace(file).filter((c) => c.end >= fromMs && c.end <= toMs);
  calls.sort((a, b) => a.end - b.end);
  const socket = (c: Call): { from?: string; to?: string } => {
    const s = /^TCP:\[[\d.]+:(\d+)->[\d.]+:(\d+)\]$/.exec(c.desc);
    if (!s) return {};
    const [local, remote] = [Number(s[1]), Number(s[2])];
    if (local === peers.leaderPeerPort) return { to: peers.byDialPort.get(remote) };
    return { from: peers.byPeerPort.get(remote) };
  };
  const starts = calls.flatMap((c, i) => (c.name === 'read' && c.ret >= BIG && socket(c).from !== undefined ? [i] : []));
  const steps = new Map<string, number[]>();
  const note = (name: string, ms: number): void => void (steps.get(name) ?? steps.set(name, []).get(name)!).push(ms);
  for (let k = 0; k + 1 < starts.length; k++) {
    const window = calls.slice(starts[k], starts[k + 1]);
    const t0 = window[0]!.end;
    const forwarder = socket(window[0]!).from!;
    const apps: string[] = [];
    const resps: string[] = [];
    let walStart: Call | undefined;
    let walDone: Call | undefined;
    const committed = new Set<string>();
    for (const c of window.slice(1)) {
      const { from, to } = socket(c);
      if (WRITES.has(c.name) && to !== undefined && c.ret >= BIG && !apps.includes(to)) {
        apps.push(to);
        note(`MsgApp written, ${apps.length === 1 ? '1st' : '2nd'} follower`, c.start - t0);
      } else if (c.name === 'read' && from !== undefined && c.ret > 0 && c.ret < BIG && apps.length > 0 && !resps.includes(from)) {
        resps.push(from);
        note(`MsgAppResp read, ${resps.length === 1 ? '1st' : '2nd'}`, c.end - t0);
      } else if (c.desc.endsWith('.wal') && c.ret >= 0) {
        if (walStart === undefined && c.name !== 'fdatasync') {
          walStart = c;
          note('WAL write issued', c.start - t0);
        }
        // etcd: the fdatasync after its write; etcd-ts: the pwrite64 itself (O_DSYNC), unless an fdatasync follows it
        const durable = c.name === 'fdatasync' || (c.name === 'pwrite64' && !window.some((x) => x.name === 'fdatasync' && x.desc === c.desc && x.start >= c.start));
        if (walStart !== undefined && walDone === undefined && durable) {
          walDone = c;
          note('WAL write durable', c.end - t0);
        }
      } else if (WRITES.has(c.name) && to !== undefined && c.ret > 0 && c.ret < BIG && resps.length > 0) {
        const name = to === forwarder ? 'commit written, forwarder' : 'commit written, other';
        if (!committed.has(name)) note(name, c.start - t0);
        committed.add(name);
      }
    }
  }
  const puts = starts.length - 1;
  const counts = new Map<string, number>();
  for (const c of calls.slice(starts[0], starts.at(-1))) counts.set(c.name, (counts.get(c.name) ?? 0) + 1);
  const q = (xs: number[], p: number): string => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!.toFixed(3);
  const order = ['MsgApp written, 1st follower', 'MsgApp written, 2nd follower', 'WAL write issued', 'WAL write durable', 'MsgAppResp read, 1st', 'MsgAppResp read, 2nd', 'commit written, forwarder', 'commit written, other'];
  return [
    `${puts} puts (strace); ms after the MsgProp was read:`,
    ...order.filter((n) => steps.has(n)).map((n) => `${n.padEnd(34)} ${q(steps.get(n)!, 0.5).padStart(7)}  ${q(steps.get(n)!, 0.9).padStart(7)}   (${steps.get(n)!.length})`),
    `syscalls per put: ${[...counts].sort((a, b) => b[1] - a[1]).map(([n, c]) => `${n} ${(c / Math.max(puts, 1)).toFixed(1)}`).join(', ')}`,
  ];
}

