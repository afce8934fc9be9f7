// One etcd or etcd-ts member for the benches that compare them (same flags, same disk:
// data under the repository), and a Node gRPC client to load it, built from proto/.

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { type ChildProcess, execFileSync, spawn, type StdioOptions } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './free-port.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export type Server = 'etcd' | 'etcd-ts';

/**
 * Benches run bin/etcd-ts itself, as users do: it starts Node with its own flags. Node
 * flags of a bench's own (a CPU profile) go through ETCDTS_NODE_FLAGS, after those.
 */
export function nodeFlagsEnv(nodeArgs: readonly string[] = []): Record<string, string> {
  return nodeArgs.length === 0 ? {} : { ETCDTS_NODE_FLAGS: nodeArgs.join(' ') };
}

/** An etcd-ts build to run: where it is and what its environment adds. */
export interface Build {
  label: string;
  dir: string;
  env: Record<string, string>;
}

/**
 * The builds named by `--ts LABEL=DIR[,VAR=VALUE...]` (repeatable) on the command line;
 * without any, this checkout as "etcd-ts".
 */
export function tsBuildsFromArgs(): Build[] {
  const specs = process.argv.flatMap((a, i) => (a === '--ts' && process.argv[i + 1] !== undefined ? [process.argv[i + 1]!] : []));
  if (specs.length === 0) return [{ label: 'etcd-ts', dir: repoRoot, env: {} }];
  return specs.map((spec) => {
    const eq = spec.indexOf('=');
    if (eq <= 0) throw new Error(`--ts ${spec}: expected LABEL=DIR[,VAR=VALUE...]`);
    const [dir, ...vars] = spec.slice(eq + 1).split(',');
    return { label: spec.slice(0, eq), dir: path.resolve(dir!), env: Object.fromEntries(vars.map((v) => [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1)])) };
  });
}

/** The value of `--name` on the command line, or `fallback`. */
export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const definition = protoLoader.loadSync(['etcdserverpb/rpc.proto'], {
  includeDirs: [path.join(repoRoot, 'proto')],
  keepCase: true,
  longs: String,
  enums: Number,
  defaults: true,
});
/** The etcd v3 services, as gRPC client constructors from our protos. */
export const pkg = grpc.loadPackageDefinition(definition) as unknown as {
  etcdserverpb: Record<string, new (addr: string, creds: grpc.ChannelCredentials, opts?: object) => grpc.Client>;
};
type Unary = (req: object, cb: (err: grpc.ServiceError | null, res: Record<string, unknown>) => void) => void;

export function call<T>(client: grpc.Client, method: string, req: object): Promise<T> {
  const fn = (client as unknown as Record<string, Unary>)[method]!.bind(client);
  return new Promise((resolve, reject) => fn(req, (err, res) => (err ? reject(err) : resolve(res as T))));
}

/** A few connections, so one HTTP/2 connection's flow control is not what limits the load. */
export class Clients {
  readonly kv: grpc.Client[];
  readonly lease: grpc.Client[];
  constructor(addr: string, conns = 4) {
    const creds = grpc.credentials.createInsecure();
    // a distinct option per channel keeps grpc-js from sharing one subchannel among them
    this.kv = Array.from({ length: conns }, (_, i) => new pkg.etcdserverpb.KV!(addr, creds, { 'bench.conn': i }));
    this.lease = Array.from({ length: conns }, (_, i) => new pkg.etcdserverpb.Lease!(addr, creds, { 'bench.conn': i }));
  }
  close(): void {
    for (const c of [...this.kv, ...this.lease]) c.close();
  }
}

/** Runs task(0..n-1) with `inflight` of them outstanding at a time. */
export async function pool(n: number, inflight: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(inflight, n) }, async () => {
      while (next < n) await task(next++);
    }),
  );
}

export interface Member {
  proc: ChildProcess;
  /** host:port of its client URL */
  addr: string;
  dir: string;
  /** where it runs: its data dir and ports, to start it again there */
  place: Place;
}

/** A member's data dir (inside `dir`, the bench's directory for it) and loopback ports. */
export interface Place {
  dir: string;
  dataDir: string;
  client: number;
  peer: number;
}

export interface StartOptions {
  /** prefix of the data dir made under the repository (default `.bench-`) */
  dirPrefix?: string;
  /** how long to wait for health (default 30 s): a start on a big data dir takes longer */
  readySeconds?: number;
  /** run here instead of in a new dir (a restart, or a data dir `etcdctl snapshot restore` wrote for `peer`) */
  place?: Place;
  args?: string[];
  /** etcd-ts only: Node's own flags, and the environment */
  nodeArgs?: string[];
  /** etcd-ts only: the built checkout to run (default: this one) */
  tsDir?: string;
  env?: Record<string, string>;
  /** where the member's stdout and stderr go (appended); default: discarded */
  logFile?: string;
}

/** A one-member cluster on free loopback ports; resolves once `etcdctl endpoint health` says so. */
export async function startMember(server: Server, opts: StartOptions): Promise<Member> {
  const place = opts.place ?? (await newPlace(opts.dirPrefix ?? '.bench-'));
  const { dir, client, peer } = place;
  const args = [
    '--name', 'm0',
    '--data-dir', place.dataDir,
    '--listen-client-urls', `http://127.0.0.1:${client}`,
    '--advertise-client-urls', `http://127.0.0.1:${client}`,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-cluster', `m0=http://127.0.0.1:${peer}`,
    '--log-level', 'warn',
    ...(opts.args ?? []),
  ];
  const log = opts.logFile === undefined ? 'ignore' : openSync(opts.logFile, 'a');
  const stdio: StdioOptions = ['ignore', log, log];
  const proc =
    server === 'etcd'
      ? spawn('etcd', args, { stdio })
      : spawn(path.join(opts.tsDir ?? repoRoot, 'bin/etcd-ts'), args, { stdio, env: { ...process.env, ...nodeFlagsEnv(opts.nodeArgs), ...opts.env } });
  if (typeof log === 'number') closeSync(log); // the child has its own copy
  const addr = `127.0.0.1:${client}`;
  const deadline = Date.now() + (opts.readySeconds ?? 30) * 1000;
  for (;;) {
    try {
      execFileSync('etcdctl', ['--endpoints', addr, 'endpoint', 'health'], { stdio: 'ignore' });
      return { proc, addr, dir, place };
    } catch {
      if (Date.now() > deadline) {
        await stopMember({ proc, addr, dir, place });
        throw new Error(`${server} did not become healthy`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function newPlace(dirPrefix: string): Promise<Place> {
  const dir = mkdtempSync(path.join(repoRoot, dirPrefix));
  return { dir, dataDir: path.join(dir, 'm0'), client: await freePort(), peer: await freePort() };
}

/** Kills the member by its PID and removes its data dir. */
export async function stopMember(m: Member): Promise<void> {
  await endMember(m, 'SIGKILL');
  rmSync(m.dir, { recursive: true, force: true });
}

/**
 * Stops the member by its PID with SIGTERM (a clean shutdown: `node --cpu-prof` writes its
 * profile then) and keeps its data dir, to start it again or on a copy.
 */
export async function shutDownMember(m: Member): Promise<void> {
  await endMember(m, 'SIGTERM');
}

async function endMember(m: Member, signal: NodeJS.Signals): Promise<void> {
  const exited = new Promise((r) => (m.proc.exitCode !== null || m.proc.signalCode !== null ? r(null) : m.proc.on('exit', r)));
  m.proc.kill(signal);
  await exited;
}

const clockTicks = Number(execFileSync('getconf', ['CLK_TCK']).toString());

/** User + system CPU seconds the process has used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  // the fields after the command name (which may hold spaces) start at "state", field 3
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

export function rssMb(pid: number): number {
  return statusMb(pid, 'VmRSS');
}

/**
 * RSS split: memory the process allocated (anonymous) and file pages it has mapped and
 * touched (LevelDB maps its table files: a full scan maps them all; the kernel reclaims them).
 */
export function rssSplitMb(pid: number): { anon: number; file: number } {
  return { anon: statusMb(pid, 'RssAnon'), file: statusMb(pid, 'RssFile') };
}

function statusMb(pid: number, field: string): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} for ${pid}`);
  return Number(m[1]) / 1024;
}

/** What a bench measures: real etcd, or an etcd-ts build (this checkout unless a DIR is named). */
export interface Target {
  label: string;
  server: Server;
  tsDir?: string;
}

/** `--servers` as the memory benches take it: `etcd`, `etcd-ts` or `LABEL=DIR`, comma-separated. */
export function serverTargets(list: string): Target[] {
  return list.split(',').map((spec) => {
    const eq = spec.indexOf('=');
    if (eq > 0) return { label: spec.slice(0, eq), server: 'etcd-ts', tsDir: path.resolve(spec.slice(eq + 1)) };
    if (spec !== 'etcd' && spec !== 'etcd-ts') throw new Error(`--servers ${spec}: expected etcd, etcd-ts or LABEL=DIR`);
    return { label: spec, server: spec };
  });
}
