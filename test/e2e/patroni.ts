// Patroni (Debian's `patroni` 3.0 + PostgreSQL 15) over an etcd cluster on 127.0.0.1:
// the PostgreSQL HA manager as it is deployed, driving the etcd3 JSON gateway (or the v2
// keys API) for its leader lock, lease keep-alives and watches. PostgreSQL refuses to run
// as root, so under root every Patroni (and the postgres it starts) runs as an
// unprivileged user that owns the node's temp dir. Every process is stopped by PID.

import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, tempDir } from './harness.js';

const patroniBin = '/usr/bin/patroni';
const patronictlBin = '/usr/bin/patronictl';
const psqlBin = '/usr/bin/psql';
/** Where Debian's postgresql-15 puts initdb, pg_ctl, postgres, pg_basebackup, pg_rewind. */
const pgBinDir = '/usr/lib/postgresql/15/bin';
/** The unprivileged account Patroni runs as when the tests run as root. */
const runAsUser = 'patroni-test';

/**
 * The same timings on etcd-ts and on real etcd: the leader key lives `ttl` seconds, Patroni
 * wakes every `loop_wait`, and gives a DCS call `retry_timeout` seconds, split evenly over
 * the three members (Patroni moves to the next one when its share runs out; `ttl` must be at
 * least loop_wait + 2 retry_timeout). An etcd election takes one to two election timeouts
 * (1-2 s), so a call caught by one has to be answered by the next member within its share.
 * 15 s gives each 5 s: with 5 s (1.7 s each) a member's answers took longer than a share at
 * a load average of 30 on two cores, and the primary demoted itself during an etcd leader
 * kill: Patroni doing its job on a DCS it could not reach, not an etcd fault.
 */
export const dcsTimings = { ttl: 35, loop_wait: 2, retry_timeout: 15 } as const;

interface Account {
  uid: number;
  gid: number;
}

let account: Account | undefined;

/**
 * Checks that Patroni, PostgreSQL and psql are installed, and under root makes sure the
 * unprivileged account exists. Throws a message that says what to install: a missing
 * dependency fails the test, it never skips it.
 */
export function patroniAccount(): Account {
  if (account) return account;
  const missing = [
    [patroniBin, 'patroni'],
    [patronictlBin, 'patroni'],
    [path.join(pgBinDir, 'postgres'), 'postgresql-15'],
    [path.join(pgBinDir, 'initdb'), 'postgresql-15'],
    [psqlBin, 'postgresql-client-15'],
  ].filter(([file]) => !existsSync(file!));
  if (missing.length > 0) {
    throw new Error(`Patroni tests need ${missing.map(([f]) => f).join(', ')}: apt-get install -y ${[...new Set(missing.map(([, p]) => p))].join(' ')}`);
  }
  if (process.getuid!() !== 0) {
    account = { uid: process.getuid!(), gid: process.getgid!() };
    return account;
  }
  try {
    execFileSync('id', ['-u', runAsUser], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['-m', runAsUser]);
  }
  const id = (flag: string) => Number(execFileSync('id', [flag, runAsUser]).toString().trim());
  account = { uid: id('-u'), gid: id('-g') };
  return account;
}

/** Which DCS section Patroni gets: `etcd3` (the v3 JSON gateway) or `etcd` (v2 keys). */
export interface DcsConfig {
  kind: 'etcd3' | 'etcd';
  /** client URLs of every member */
  endpoints: string[];
  username?: string;
  password?: string;
}

/** A directory the Patroni account owns (a test's temp dir is created by whoever runs the test). */
function ownedDir(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const { uid, gid } = patroniAccount();
  chownSync(dir, uid, gid);
  return dir;
}

/** Patroni's namespace (its default): keys live under /service/<scope>/. */
export const namespace = '/service/';

function nodeConfig(o: { scope: string; name: string; dir: string; restPort: number; pgPort: number; dcs: DcsConfig }): object {
  const hosts = o.dcs.endpoints.map((u) => new URL(u).host);
  const credentials = o.dcs.username === undefined ? {} : { username: o.dcs.username, password: o.dcs.password };
  return {
    scope: o.scope,
    namespace,
    name: o.name,
    log: { level: 'INFO', format: '%(asctime)s %(levelname)s: %(message)s' },
    restapi: { listen: `127.0.0.1:${o.restPort}`, connect_address: `127.0.0.1:${o.restPort}` },
    [o.dcs.kind]: { hosts, protocol: 'http', ...credentials },
    bootstrap: {
      dcs: { ...dcsTimings, maximum_lag_on_failover: 1048576, postgresql: { use_pg_rewind: true, parameters: { wal_log_hints: 'on', max_wal_senders: 5, max_replication_slots: 5 } } },
      initdb: [{ encoding: 'UTF8' }],
      pg_hba: ['host replication replicator 127.0.0.1/32 trust', 'host all all 127.0.0.1/32 trust', 'local all all trust'],
    },
    postgresql: {
      listen: `127.0.0.1:${o.pgPort}`,
      connect_address: `127.0.0.1:${o.pgPort}`,
      data_dir: path.join(o.dir, 'data'),
      bin_dir: pgBinDir,
      pgpass: path.join(o.dir, 'pgpass'),
      authentication: {
        superuser: { username: 'postgres', password: 'postgres-pw' },
        replication: { username: 'replicator', password: 'replicator-pw' },
      },
      parameters: { unix_socket_directories: o.dir, shared_buffers: '16MB', max_connections: 20 },
    },
  };
}

export interface PatroniNode {
  name: string;
  restUrl: string;
  pgPort: number;
  dataDir: string;
  /** the node's config file, for patronictl */
  configFile: string;
  proc: ChildProcess;
  /** everything Patroni logged so far */
  output(): string;
  exited: Promise<number | string>;
}

const nodes = new Set<PatroniNode>();

/** Starts one Patroni node (as the unprivileged account) in `base/<name>`; does not wait for a role. */
export async function startPatroni(o: { scope: string; name: string; base: string; dcs: DcsConfig }): Promise<PatroniNode> {
  const { uid, gid } = patroniAccount();
  const dir = ownedDir(path.join(ownedDir(o.base), o.name));
  const restPort = await freePort();
  const pgPort = await freePort();
  const configFile = path.join(dir, 'patroni.yml');
  // JSON is YAML: Patroni reads it as it reads any patroni.yml
  writeFileSync(configFile, JSON.stringify(nodeConfig({ ...o, dir, restPort, pgPort }), null, 2));
  chownSync(configFile, uid, gid);
  const proc = spawn(patroniBin, [configFile], {
    uid,
    gid,
    cwd: dir,
    env: { PATH: `${pgBinDir}:/usr/bin:/bin`, HOME: dir, LANG: 'C.UTF-8' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const node: PatroniNode = { name: o.name, restUrl: `http://127.0.0.1:${restPort}`, pgPort, dataDir: path.join(dir, 'data'), configFile, proc, output: () => out, exited };
  nodes.add(node);
  return node;
}

/** The PID of the postgres postmaster Patroni started for `node`, if one runs. */
function postmasterPid(node: PatroniNode): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(node.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * kill -9 of a node's Patroni and its postgres (a machine that died): the postmaster,
 * orphaned, is shut down immediately (SIGQUIT takes its backends with it).
 */
export async function killPatroni(node: PatroniNode): Promise<void> {
  const pg = postmasterPid(node);
  if (node.proc.exitCode === null && node.proc.signalCode === null) node.proc.kill('SIGKILL');
  await node.exited;
  if (pg !== undefined) {
    process.kill(pg, 'SIGQUIT');
    if (!(await waitGone(pg, 10_000))) process.kill(pg, 'SIGKILL');
  }
  nodes.delete(node);
}

/** Stops every Patroni still running (and its postgres). Call from afterEach or afterAll, before the harness kills the members. */
export async function cleanupPatroni(): Promise<void> {
  await Promise.all([...nodes].map(killPatroni));
}

export interface PatroniStatus {
  state: string;
  /** 'master' for the primary in Patroni 3.0, 'replica' otherwise */
  role: string;
  timeline?: number;
  postmaster_start_time?: string;
  /** when Patroni last reached the DCS (Unix seconds) */
  dcs_last_seen?: number;
  replication?: { application_name: string; state: string }[];
}

/** GET /patroni on the node's REST API. */
export async function patroniStatus(node: PatroniNode): Promise<PatroniStatus> {
  const res = await fetch(`${node.restUrl}/patroni`, { signal: AbortSignal.timeout(5_000) });
  return (await res.json()) as PatroniStatus;
}

/** The status code of GET `/primary` or `/replica` (200 when the node has that role). */
export async function roleCheck(node: PatroniNode, role: 'primary' | 'replica'): Promise<number> {
  const res = await fetch(`${node.restUrl}/${role}`, { signal: AbortSignal.timeout(5_000) });
  await res.arrayBuffer();
  return res.status;
}

async function until<T>(what: string, nodesToShow: PatroniNode[], timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch {
      // the REST API is not up yet, or postgres is restarting
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}:\n${nodesToShow.map((n) => `--- ${n.name}\n${n.output().slice(-6000)}`).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Waits until exactly one node answers 200 on /primary and every other one answers 200
 * on /replica with a streaming replication connection on the primary. The default covers a
 * bootstrap (initdb, then pg_basebackup) at a load average of 30-40, where 90 s once ran out.
 */
export function waitForRoles(all: PatroniNode[], timeoutMs = 240_000): Promise<{ primary: PatroniNode; replicas: PatroniNode[] }> {
  return until('one primary and streaming replicas', all, timeoutMs, async () => {
    const primaries: PatroniNode[] = [];
    const replicas: PatroniNode[] = [];
    for (const n of all) {
      if ((await roleCheck(n, 'primary')) === 200) primaries.push(n);
      else if ((await roleCheck(n, 'replica')) === 200) replicas.push(n);
    }
    if (primaries.length !== 1 || replicas.length !== all.length - 1) return undefined;
    // Patroni reports the new role a moment before postgres has left recovery
    if ((await psql(primaries[0]!, 'SELECT pg_is_in_recovery()')) !== 'f') return undefined;
    const streaming = (await patroniStatus(primaries[0]!)).replication?.filter((r) => r.state === 'streaming').map((r) => r.application_name) ?? [];
    if (!replicas.every((r) => streaming.includes(r.name))) return undefined;
    return { primary: primaries[0]!, replicas };
  });
}

/** Runs SQL through psql over TCP as the superuser; resolves with its unaligned output. */
export function psql(node: PatroniNode, sql: string): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      psqlBin,
      ['-h', '127.0.0.1', '-p', String(node.pgPort), '-U', 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-Atc', sql],
      { env: { ...process.env, PGPASSWORD: 'postgres-pw', PGCONNECT_TIMEOUT: '5' }, timeout: 20_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`psql ${sql}: ${stderr || err.message}`)) : resolve(stdout.trim())),
    ),
  );
}

/** Waits until `sql` on `node` prints `expected` (a replica replays the primary's writes a moment later). */
export function waitForQuery(node: PatroniNode, sql: string, expected: string, timeoutMs = 30_000): Promise<string> {
  return until(`"${sql}" to print ${expected} on ${node.name}`, [node], timeoutMs, async () => ((await psql(node, sql)) === expected ? expected : undefined));
}

/** POST a JSON body to a node's REST API (`/switchover`, `/failover`); resolves with status and text. */
export async function restPost(node: PatroniNode, route: string, body: object): Promise<{ status: number; text: string }> {
  const res = await fetch(`${node.restUrl}${route}`, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(60_000) });
  return { status: res.status, text: await res.text() };
}

/** Runs patronictl with a node's configuration (so it reaches the same DCS). */
export function patronictl(node: PatroniNode, args: string[]): Promise<{ code: number; out: string }> {
  const { uid, gid } = patroniAccount();
  return new Promise((resolve) =>
    execFile(
      patronictlBin,
      ['-c', node.configFile, ...args],
      { uid, gid, cwd: path.dirname(node.configFile), env: { PATH: '/usr/bin:/bin', HOME: path.dirname(node.configFile), LANG: 'C.UTF-8' }, timeout: 90_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    ),
  );
}

/** A temp dir for one Patroni cluster's nodes, owned by the Patroni account. */
export function patroniBase(): string {
  return ownedDir(tempDir('etcd-ts-patroni-'));
}
