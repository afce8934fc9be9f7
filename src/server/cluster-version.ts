// The cluster version: the lowest server version among the members, as MAJOR.MINOR.0,
// decided by the leader and replicated through raft (etcd's monitorVersions). Members
// log it when they apply it; clients see it as /version's "etcdcluster".

import type { Logger } from 'pino';
import type { Member } from './membership.js';
import { idHex } from './ids.js';
import { moduleLogger } from './logger.js';

/** What /version says before the leader has decided a cluster version. */
export const NOT_DECIDED = 'not_decided';
/** What a leader sets when it cannot learn every member's version (etcd's MinClusterVersion). */
export const MIN_CLUSTER_VERSION = '3.0.0';
/** etcd's monitorVersionInterval: the peer connection write timeout less one second. */
export const MONITOR_VERSION_INTERVAL_MS = 4000;

export interface Version {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

export function parseVersion(s: string): Version | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$/.exec(s);
  if (m === null) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) };
}

function compare(a: Version, b: Version): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch;
}

/** '3.4.0' → '3.4', as etcd names a cluster version in its logs and metrics. */
export function majorMinor(v: string): string {
  const p = parseVersion(v);
  return p === undefined ? v : `${p.major}.${p.minor}`;
}

/**
 * The version the members can all run: the lowest server version, as MAJOR.MINOR.0;
 * undefined when a member's version is unknown (unreachable) or unreadable.
 */
export function decideClusterVersion(serverVersions: ReadonlyArray<string | undefined>): string | undefined {
  let lowest: Version | undefined;
  for (const s of serverVersions) {
    const v = s === undefined ? undefined : parseVersion(s);
    if (v === undefined) return undefined;
    if (lowest === undefined || compare(v, lowest) < 0) lowest = v;
  }
  return lowest === undefined ? undefined : `${lowest.major}.${lowest.minor}.0`;
}

/** True when `next` should replace `current` (none yet, or a higher one decided). */
export function isUpgrade(current: string | undefined, next: string): boolean {
  if (current === undefined) return true;
  const a = parseVersion(current);
  const b = parseVersion(next);
  return a !== undefined && b !== undefined && compare(a, b) < 0;
}

export interface VersionMonitorDeps {
  readonly localId: bigint;
  /** this member's server version, e.g. '3.4.23' */
  readonly serverVersion: string;
  readonly log: Logger;
  isLeader(): boolean;
  members(): readonly Member[];
  /** the agreed cluster version, if any */
  current(): string | undefined;
  /** asks a member's peer URLs for its server version; undefined when none answers */
  fetchServerVersion(m: Member): Promise<string | undefined>;
  /** proposes the cluster version through raft; resolves once applied */
  propose(version: string): Promise<void>;
}

/**
 * Run by every member, acting only while it leads: on the first commit of its term and
 * every MONITOR_VERSION_INTERVAL_MS it sets the cluster version when there is none
 * (the decided one, or the minimum when a member cannot be asked) and raises it when
 * every member runs a higher one.
 */
export class ClusterVersionMonitor {
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(private readonly d: VersionMonitorDeps) {}

  start(): void {
    this.timer = setInterval(() => this.check(), MONITOR_VERSION_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** A check now: a new leader has committed its first entry. */
  check(): void {
    if (this.running || !this.d.isLeader()) return;
    this.running = true;
    void this.decide().finally(() => (this.running = false));
  }

  private async decide(): Promise<void> {
    const versions = await Promise.all(
      this.d.members().map((m) => (m.id === this.d.localId ? Promise.resolve(this.d.serverVersion) : this.d.fetchServerVersion(m))),
    );
    if (!this.d.isLeader()) return;
    const decided = decideClusterVersion(versions);
    const current = this.d.current();
    const next = current === undefined ? (decided ?? MIN_CLUSTER_VERSION) : decided;
    if (next === undefined || !isUpgrade(current, next)) return;
    if (current === undefined) this.d.log.info({ 'cluster-version': majorMinor(next) }, `setting up the initial cluster version to ${majorMinor(next)}`);
    else this.d.log.info({ from: majorMinor(current), to: majorMinor(next) }, `updating the cluster version from ${majorMinor(current)} to ${majorMinor(next)}`);
    try {
      await this.d.propose(next);
    } catch (err) {
      this.d.log.warn({ 'cluster-version': majorMinor(next), error: (err as Error).message, 'local-member-id': idHex(this.d.localId) }, 'failed to update the cluster version');
    }
  }
}

/**
 * Logs a cluster version set with etcd's lines (operators and etcd's own e2e suite wait
 * for "enabled capabilities for version"); capabilities are logged when they rise, as
 * etcd's UpdateCapability does.
 */
export function logVersionSet(log: Logger): (previous: string | undefined, version: string) => void {
  // the packages etcd logs these from (--log-package-levels names them)
  const membershipLog = moduleLogger(log, 'etcdserver/membership/cluster.ts');
  const capabilityLog = moduleLogger(log, 'etcdserver/api/capability.ts');
  let enabled: string | undefined;
  return (previous, version) => {
    if (previous === undefined) membershipLog.info({ 'cluster-version': majorMinor(version) }, `set the initial cluster version to ${majorMinor(version)}`);
    else if (previous !== version) membershipLog.info({ from: majorMinor(previous), to: majorMinor(version) }, `updated the cluster version from ${majorMinor(previous)} to ${majorMinor(version)}`);
    if (isUpgrade(enabled, version)) {
      enabled = version;
      capabilityLog.info({ 'cluster-version': majorMinor(version) }, `enabled capabilities for version ${majorMinor(version)}`);
    }
  };
}
