// Real member processes on 127.0.0.1: etcd 3.4 (`/usr/bin/etcd`), etcd-ts
// (`node bin/etcd-ts`, same flags) or both in one cluster, each behind a peer proxy (peer-proxy.ts)
// whose address it advertises. Ports are chosen by the OS. Every process this
// module starts is tracked by PID and killed by PID.

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EtcdClient, type Member as PbMember } from './client.js';
import { Network, PeerProxy } from './peer-proxy.js';
import { freePort } from '../bench/free-port.js';

export type ServerBinary = 'etcd' | 'etcd-ts';
/** what a cluster runs: one binary, or `mixed` (members alternate etcd-ts and etcd, as one cluster over etcd's peer protocol) */
export type ClusterBinary = ServerBinary | 'mixed';
export const CLUSTER_BINARIES: readonly ClusterBinary[] = ['etcd', 'etcd-ts', 'mixed'];

/** The binary member `index` runs: in a mixed cluster even indexes are etcd-ts, so a 3-member cluster has 2 etcd-ts and 1 etcd. */
export function memberBinary(cluster: ClusterBinary, index: number): ServerBinary {
  if (cluster !== 'mixed') return cluster;
  return index % 2 === 0 ? 'etcd-ts' : 'etcd';
}

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface ClusterOptions {
  size: number;
  binary: ClusterBinary;
  /** scratch directory for data dirs and logs */
  dir: string;
  snapshotCount: number;
  /** 0 = etcd's default */
  quotaBackendBytes: number;
  /** period of timed progress notifications (etcd's default is 10 min) */
  progressNotifyMs: number;
  /**
   * raft log entries an etcd-ts member keeps behind a snapshot for slow followers
   * (--experimental-snapshot-catchup-entries; etcd 3.4 has 5000 built in, and gets no flag)
   */
  snapshotCatchUpEntries?: number;
  seed: number;
}

export type MemberState = 'running' | 'killed' | 'paused' | 'removed';

export interface ClusterMember {
  index: number;
  name: string;
  binary: ServerBinary;
  clientPort: number;
  peerPort: number;
  proxy: PeerProxy;
  dataDir: string;
  logFile: string;
  /** decimal member ID, once known */
  id: string;
  state: MemberState;
  proc: ChildProcess | null;
  /** --initial-cluster-state to use at the next start */
  clusterState: 'new' | 'existing';
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * How long a cluster is given to agree on a leader, after its start, a heal or a membership
 * change. Generous: at a load average of 30 on two cores a member took 20 s from its spawn
 * to listening on its peer port, and three runs of the test suite's jepsen file failed on
 * the 30 s this once was.
 */
export const HEALTHY_WITHIN_MS = 120_000;

export class Cluster {
  readonly network: Network;
  readonly members: ClusterMember[] = [];
  private readonly clients = new Map<number, EtcdClient>();
  private readonly token: string;

  private constructor(readonly options: ClusterOptions) {
    this.network = new Network(options.seed ^ 0x5eed);
    this.token = `jepsen-${process.pid}-${Date.now()}`;
  }

  static async start(options: ClusterOptions): Promise<Cluster> {
    const c = new Cluster(options);
    fs.mkdirSync(options.dir, { recursive: true });
    for (let i = 0; i < options.size; i++) {
      const clientPort = await freePort();
      const peerPort = await freePort();
      const proxy = new PeerProxy(i, peerPort, c.network);
      await proxy.listen();
      c.members.push({
        index: i,
        name: `m${i}`,
        binary: memberBinary(options.binary, i),
        clientPort,
        peerPort,
        proxy,
        dataDir: path.join(options.dir, `m${i}.data`),
        logFile: path.join(options.dir, `m${i}.log`),
        id: '',
        state: 'killed',
        proc: null,
        clusterState: 'new',
      });
    }
    for (const m of c.members) c.spawn(m, c.members);
    try {
      await c.waitHealthy();
      await c.refreshIds();
    } catch (e) {
      await c.stop();
      throw e;
    }
    return c;
  }

  endpoint(i: number): string {
    return `127.0.0.1:${this.members[i]!.clientPort}`;
  }

  peerUrl(m: ClusterMember): string {
    return `http://127.0.0.1:${m.proxy.port}`;
  }

  /** a client used by the harness itself (not recorded) */
  client(i: number): EtcdClient {
    let c = this.clients.get(i);
    if (c === undefined) this.clients.set(i, (c = new EtcdClient([this.endpoint(i)])));
    return c;
  }

  running(): ClusterMember[] {
    return this.members.filter((m) => m.state === 'running');
  }

  private args(m: ClusterMember, initial: readonly ClusterMember[]): string[] {
    const o = this.options;
    const url = (port: number): string => `http://127.0.0.1:${port}`;
    const args = [
      `--name=${m.name}`,
      `--data-dir=${m.dataDir}`,
      `--listen-client-urls=${url(m.clientPort)}`,
      `--advertise-client-urls=${url(m.clientPort)}`,
      `--listen-peer-urls=${url(m.peerPort)}`,
      `--initial-advertise-peer-urls=${this.peerUrl(m)}`,
      `--initial-cluster=${initial.map((x) => `${x.name}=${this.peerUrl(x)}`).join(',')}`,
      `--initial-cluster-state=${m.clusterState}`,
      `--initial-cluster-token=${this.token}`,
      `--snapshot-count=${o.snapshotCount}`,
      `--experimental-watch-progress-notify-interval=${o.progressNotifyMs}ms`,
      '--logger=zap',
      '--log-level=warn',
    ];
    if (o.quotaBackendBytes > 0) args.push(`--quota-backend-bytes=${o.quotaBackendBytes}`);
    if (o.snapshotCatchUpEntries !== undefined && m.binary === 'etcd-ts') args.push(`--experimental-snapshot-catchup-entries=${o.snapshotCatchUpEntries}`);
    return args;
  }

  private spawn(m: ClusterMember, initial: readonly ClusterMember[]): void {
    const args = this.args(m, initial);
    const log = fs.openSync(m.logFile, 'a');
    fs.writeSync(log, `\n=== ${new Date().toISOString()} starting ${m.name}: ${args.join(' ')}\n`);
    // bin/etcd-ts run as users run it, with the Node flags it starts Node with
    const cmd = m.binary === 'etcd' ? 'etcd' : path.join(REPO_ROOT, 'bin', 'etcd-ts');
    const proc = spawn(cmd, args, { cwd: REPO_ROOT, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    m.proc = proc;
    m.state = 'running';
    proc.on('exit', () => {
      if (m.proc === proc) {
        m.proc = null;
        if (m.state === 'running' || m.state === 'paused') m.state = 'killed';
      }
    });
  }

  /** Waits until every running member reports the same leader (by default for as long as HEALTHY_WITHIN_MS). */
  async waitHealthy(timeoutMs = HEALTHY_WITHIN_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      try {
        const statuses = await Promise.all(this.running().map((m) => this.client(m.index).status(1000)));
        const leaders = new Set(statuses.map((s) => s.leader));
        if (statuses.length > 0 && leaders.size === 1 && !leaders.has('0')) return;
        last = `leaders seen: ${[...leaders].join(',')}`;
      } catch (e) {
        last = String(e);
      }
      await sleep(200);
    }
    throw new Error(`cluster not healthy after ${timeoutMs}ms (${last}); logs in ${this.options.dir}`);
  }

  async refreshIds(): Promise<void> {
    for (const m of this.running()) {
      try {
        const list = await this.client(m.index).memberList(2000);
        this.applyMemberList(list);
        return;
      } catch {
        // try the next member
      }
    }
    throw new Error('no member answered MemberList');
  }

  private applyMemberList(list: PbMember[]): void {
    for (const pm of list) {
      const m = this.members.find((x) => pm.peerURLs.includes(this.peerUrl(x)));
      if (m !== undefined) {
        m.id = pm.ID;
        this.network.setMemberId(m.index, pm.ID);
      }
    }
  }

  /** Index of the member every running member agrees is leader, or null. */
  async leader(): Promise<number | null> {
    for (const m of this.running()) {
      try {
        const s = await this.client(m.index).status(500);
        const l = this.members.find((x) => x.id === s.leader);
        if (l !== undefined) return l.index;
      } catch {
        // ask another member
      }
    }
    return null;
  }

  async kill(i: number): Promise<void> {
    const m = this.members[i]!;
    const proc = m.proc;
    if (proc === null) return;
    if (m.state === 'paused') proc.kill('SIGCONT');
    m.state = 'killed';
    await new Promise<void>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill('SIGKILL');
    });
  }

  restart(i: number): void {
    const m = this.members[i]!;
    if (m.state !== 'killed') return;
    this.spawn(m, this.members.filter((x) => x.state !== 'removed' || x === m));
  }

  pause(i: number): void {
    const m = this.members[i]!;
    if (m.state !== 'running' || m.proc === null) return;
    m.proc.kill('SIGSTOP');
    m.state = 'paused';
  }

  resume(i: number): void {
    const m = this.members[i]!;
    if (m.state !== 'paused' || m.proc === null) return;
    m.proc.kill('SIGCONT');
    m.state = 'running';
  }

  /**
   * Removes member i from the cluster, wipes its data and adds it back as a
   * new member (new ID) that must catch up from a snapshot.
   */
  async removeAndReAdd(i: number): Promise<void> {
    await this.remove(i);
    await this.reAdd(i);
  }

  private helperFor(i: number): EtcdClient {
    const helper = this.running().find((m) => m.index !== i);
    if (helper === undefined) throw new Error('no running member to run the membership change on');
    return this.client(helper.index);
  }

  private async remove(i: number): Promise<void> {
    const target = this.members[i]!;
    if (target.id === '') throw new Error(`${target.name} has no known member ID`);
    const client = this.helperFor(i);
    try {
      await client.memberRemove(target.id, 5000);
    } catch (e) {
      // A timed-out removal may still have happened.
      const list = await client.memberList(2000);
      if (list.some((pm) => pm.ID === target.id)) throw e;
    }
    target.state = 'removed';
    const proc = target.proc;
    if (proc !== null) {
      proc.kill('SIGCONT');
      proc.kill('SIGKILL');
      await new Promise<void>((resolve) => (proc.exitCode !== null || proc.signalCode !== null ? resolve() : proc.once('exit', () => resolve())));
    }
    target.proc = null;
    for (const m of this.members) m.proxy.resetLinksOf(i);
    fs.rmSync(target.dataDir, { recursive: true, force: true });
  }

  /** Adds a removed member back (reusing an earlier add that timed out) and starts it empty. */
  async reAdd(i: number): Promise<void> {
    const target = this.members[i]!;
    if (target.state !== 'removed') return;
    const client = this.helperFor(i);
    const url = this.peerUrl(target);
    let members = await client.memberList(2000);
    let mine = members.find((pm) => pm.peerURLs.includes(url));
    if (mine === undefined) {
      const added = await client.memberAdd([url], 5000);
      mine = added.member;
      members = added.members;
    }
    target.id = mine.ID;
    this.network.setMemberId(i, target.id);
    target.clusterState = 'existing';
    const present = this.members.filter((m) => members.some((pm) => pm.peerURLs.includes(this.peerUrl(m))));
    target.state = 'killed';
    this.spawn(target, present);
  }

  /** Ends everything this cluster started. */
  async stop(): Promise<void> {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
    await Promise.all(
      this.members.map(async (m) => {
        if (m.proc !== null) {
          m.proc.kill('SIGCONT');
          await this.kill(m.index);
        }
      }),
    );
    await Promise.all(this.members.map((m) => m.proxy.close()));
  }
}
