// Fault injection on real member processes. One fault at a time: a quiet
// period, a fault held for a few seconds, then healing.
//
//   kill       kill -9 of one member, the leader, or a majority; restarted later
//   pause      SIGSTOP / SIGCONT of one member, the leader, or a majority
//   partition  blackholed peer links: one member (or the leader) isolated, or a
//              random majority/minority split; sometimes held until the leader's
//              log has moved far enough that the member needs a snapshot
//   delay      50-300 ms (+ jitter) on the peer links of one member or all
//   drop       connections on peer links reset with some probability
//   member     a member is removed, its data wiped, and added back as a new member
//   nospace    big values fill the backend past --quota-backend-bytes (NOSPACE
//              alarm), then the harness deletes them, compacts, defragments and
//              disarms the alarm
//
// Compaction runs separately (run.ts), bounded by the recorders' progress.

import type { Cluster } from './cluster.js';
import type { NemesisEvent, Operation } from './history.js';
import { Rng } from './rng.js';

export const NEMESIS_KINDS = ['kill', 'pause', 'partition', 'delay', 'drop', 'member', 'nospace'] as const;
export type NemesisKind = (typeof NEMESIS_KINDS)[number];

export function parseNemesis(spec: string): NemesisKind[] {
  if (spec.trim() === '' || spec === 'none') return [];
  const kinds = spec.split(',').map((s) => s.trim());
  for (const k of kinds) {
    if (!(NEMESIS_KINDS as readonly string[]).includes(k)) throw new Error(`unknown nemesis "${k}"; choose from ${NEMESIS_KINDS.join(', ')}`);
  }
  return kinds as NemesisKind[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Distance in raft entries past which a lagging member is sent a snapshot
 * (etcd keeps 5000 entries after each snapshot). */
const SNAPSHOT_CATCHUP_ENTRIES = 5000;

export interface NemesisOptions {
  kinds: NemesisKind[];
  seed: number;
  clock(): number;
  /** records the NOSPACE filler's writes as history operations */
  recordFiller(op: Omit<Operation, 'id'>): void;
  /** compacts as far as the recorders allow */
  compact(): Promise<void>;
}

export class Nemesis {
  readonly events: NemesisEvent[] = [];
  /** time during which a fault was active, in ms */
  faultMs = 0;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private readonly rng: Rng;
  private fillerCounter = 0;
  private wake: (() => void) | null = null;

  constructor(
    private readonly cluster: Cluster,
    private readonly o: NemesisOptions,
  ) {
    this.rng = new Rng(o.seed * 31337 + 1);
  }

  private note(kind: string, detail: string): void {
    this.events.push({ time: this.o.clock(), kind, detail });
  }

  start(): void {
    if (this.o.kinds.length > 0) this.loop = this.run();
  }

  /** Stops injecting, heals everything, and waits for a healthy cluster. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    if (this.loop !== null) await this.loop;
    await this.healAll();
  }

  /** Stops injecting without healing (the cluster is being torn down). */
  async abort(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    if (this.loop !== null) await this.loop;
  }

  private async nap(ms: number): Promise<void> {
    if (this.stopped) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
    this.wake = null;
  }

  private async run(): Promise<void> {
    await this.nap(this.rng.int(1000, 2000));
    while (!this.stopped) {
      const kind = this.rng.pick(this.o.kinds);
      const t0 = this.o.clock();
      try {
        await this.inject(kind);
      } catch (e) {
        this.note('error', `${kind}: ${e instanceof Error ? e.message : String(e)}`);
      }
      await this.healAll();
      this.faultMs += this.o.clock() - t0;
      await this.nap(this.rng.int(1000, 3000));
    }
  }

  private hold(): Promise<void> {
    return this.nap(this.rng.int(1500, 4000));
  }

  /** one member, the leader, or a majority */
  private async targets(): Promise<number[]> {
    const n = this.cluster.members.length;
    const live = this.cluster.members.filter((m) => m.state === 'running').map((m) => m.index);
    const mode = this.rng.weighted({ one: 4, leader: 4, majority: n >= 3 ? 2 : 0 });
    if (mode === 'leader') {
      const l = await this.cluster.leader();
      if (l !== null) return [l];
    }
    if (mode === 'majority') return this.rng.shuffle([...live]).slice(0, Math.floor(n / 2) + 1);
    return [this.rng.pick(live)];
  }

  private async inject(kind: NemesisKind): Promise<void> {
    const c = this.cluster;
    switch (kind) {
      case 'kill': {
        const t = await this.targets();
        this.note('kill', `kill -9 ${t.map((i) => c.members[i]!.name).join(',')}`);
        await Promise.all(t.map((i) => c.kill(i)));
        await this.hold();
        this.note('restart', t.map((i) => c.members[i]!.name).join(','));
        for (const i of t) c.restart(i);
        return;
      }
      case 'pause': {
        const t = await this.targets();
        this.note('pause', `SIGSTOP ${t.map((i) => c.members[i]!.name).join(',')}`);
        for (const i of t) c.pause(i);
        await this.hold();
        return;
      }
      case 'partition':
        return this.partition();
      case 'delay':
      case 'drop': {
        const n = c.members.length;
        const all = this.rng.chance(0.5);
        const one = this.rng.int(0, n - 1);
        const fault =
          kind === 'delay'
            ? { kind: 'delay' as const, ms: this.rng.int(50, 300), jitterMs: this.rng.int(0, 100) }
            : { kind: 'drop' as const, probability: this.rng.uniform(0.05, 0.4) };
        for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) if (all || a === one || b === one) c.network.setFault(a, b, fault);
        this.note(kind, `${all ? 'all links' : 'links of ' + c.members[one]!.name}: ${JSON.stringify(fault)}`);
        await this.hold();
        return;
      }
      case 'member': {
        const i = this.rng.int(0, c.members.length - 1);
        this.note('member', `remove ${c.members[i]!.name} (${c.members[i]!.id}), wipe its data, add it back`);
        await c.removeAndReAdd(i);
        this.note('member', `${c.members[i]!.name} re-added as ${c.members[i]!.id}`);
        await c.waitHealthy();
        return;
      }
      case 'nospace':
        return this.nospace();
    }
  }

  private async partition(): Promise<void> {
    const c = this.cluster;
    const n = c.members.length;
    const mode = this.rng.weighted({ isolate: 3, leader: 3, split: n >= 3 ? 2 : 0, snapshot: 1 });
    let minority: number[];
    if (mode === 'split') {
      minority = this.rng.shuffle([...Array(n).keys()]).slice(0, Math.floor((n - 1) / 2) || 1);
    } else {
      const l = mode === 'leader' ? await c.leader() : null;
      minority = [l ?? this.rng.int(0, n - 1)];
    }
    for (const a of minority) for (let b = 0; b < n; b++) if (!minority.includes(b)) c.network.setFault(a, b, { kind: 'blackhole' });
    this.note('partition', `${mode}: {${minority.map((i) => c.members[i]!.name).join(',')}} cut off`);
    if (mode === 'snapshot') await this.holdUntilSnapshot(minority[0]!);
    else await this.hold();
  }

  /** Keeps a member cut off until the majority's log has moved past the catch-up window. */
  private async holdUntilSnapshot(isolated: number): Promise<void> {
    const c = this.cluster;
    const other = c.members.find((m) => m.index !== isolated && m.state === 'running');
    if (other === undefined) return this.hold();
    const start = await c.client(other.index).status(1000).catch(() => null);
    if (start === null) return this.hold();
    const deadline = Date.now() + 20_000;
    while (!this.stopped && Date.now() < deadline) {
      await this.nap(500);
      const now = await c.client(other.index).status(1000).catch(() => null);
      if (now !== null && now.raftIndex - start.raftIndex > SNAPSHOT_CATCHUP_ENTRIES + 100) {
        this.note('partition', `log moved ${now.raftIndex - start.raftIndex} entries: ${c.members[isolated]!.name} needs a snapshot`);
        return;
      }
    }
  }

  private async nospace(): Promise<void> {
    const c = this.cluster;
    const helper = c.members.find((m) => m.state === 'running');
    if (helper === undefined) return;
    const client = c.client(helper.index);
    this.note('nospace', 'filling the backend');
    const size = 1024 * 1024;
    for (let i = 0; i < 400 && !this.stopped; i++) {
      const n = ++this.fillerCounter;
      const value = Buffer.alloc(size, 'x');
      const prefix = Buffer.from(`fill${n}-`);
      prefix.copy(value);
      const key = `filler/${n}`;
      const recorded = `${value.subarray(0, 32).toString('latin1')}#${size}`;
      const call = this.o.clock();
      try {
        const rev = await client.putBytes(key, value, 5000);
        this.o.recordFiller({ client: -1000, endpoint: c.endpoint(helper.index), input: { type: 'put', key, value: recorded, lease: '0' }, call, return: this.o.clock(), output: { type: 'put', revision: rev } });
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        this.o.recordFiller({ client: -1000, endpoint: c.endpoint(helper.index), input: { type: 'put', key, value: recorded, lease: '0' }, call, return: Infinity, output: null, error: msg });
        if (/database space exceeded/.test(msg)) {
          this.note('nospace', `NOSPACE after ${i} filler writes`);
          break;
        }
      }
    }
    await this.hold();
    await this.reclaim(client);
  }

  /** Deletes the filler, compacts, defragments every member and disarms the alarm. */
  private async reclaim(client: ReturnType<Cluster['client']>): Promise<void> {
    const c = this.cluster;
    const call = this.o.clock();
    const input = { type: 'delete' as const, key: 'filler/', end: 'filler0' };
    try {
      const out = await client.execute(input, 5000);
      this.o.recordFiller({ client: -1000, endpoint: client.endpoints[0]!, input, call, return: this.o.clock(), output: out });
      await this.o.compact();
    } catch (e) {
      this.o.recordFiller({ client: -1000, endpoint: client.endpoints[0]!, input, call, return: Infinity, output: null, error: String(e) });
    }
    for (const m of c.running()) await c.client(m.index).defragment(30_000).catch(() => undefined);
    const alarms = await client.alarms(2000).catch(() => []);
    for (const a of alarms) await client.disarm(a.memberID, a.alarm, 2000).catch(() => undefined);
    this.note('nospace', `reclaimed; disarmed ${alarms.length} alarm(s)`);
  }

  async healAll(): Promise<void> {
    const c = this.cluster;
    const was = c.network.describe();
    c.network.healAll();
    const touched: string[] = [];
    for (const m of c.members) {
      if (m.state === 'removed') {
        // a membership change that failed half way: add the member back
        try {
          await c.reAdd(m.index);
          touched.push(`re-add ${m.name}`);
        } catch (e) {
          touched.push(`re-add ${m.name} failed: ${e instanceof Error ? e.message : String(e)}`);
        }
        continue;
      }
      if (m.state === 'paused') {
        c.resume(m.index);
        touched.push(`resume ${m.name}`);
      } else if (m.state === 'killed') {
        c.restart(m.index);
        touched.push(`restart ${m.name}`);
      }
    }
    if (was !== 'healthy' || touched.length > 0) this.note('heal', [was !== 'healthy' ? `links ${was}` : '', ...touched].filter((x) => x).join('; '));
    await sleep(0);
  }
}
