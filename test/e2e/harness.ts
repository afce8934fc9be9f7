// End-to-end harness: real member processes on 127.0.0.1 (etcd-ts from bin/, or real
// etcd when E2E_BINARY=etcd, to check a test's expectations against the reference),
// driven by the stock etcdctl. Every process started is killed by PID at cleanup.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultConfig, type EtcdConfig } from '../../src/server/config/index.js';
import { freePort } from '../../bench/free-port.js';
import { nodeFlagsEnv } from '../../bench/member.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const binary = process.env.E2E_BINARY === 'etcd' ? 'etcd' : 'etcd-ts';

const live = new Set<ChildProcess>();
const dirs: string[] = [];

export function tempDir(prefix = 'etcd-ts-e2e-'): string {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
}

export { freePort };

/** A one-member cluster's configuration for startEtcd in this process, on free loopback ports. */
export async function inProcessConfig(name: string): Promise<EtcdConfig> {
  const client = new URL(`http://127.0.0.1:${await freePort()}`);
  const peer = new URL(`http://127.0.0.1:${await freePort()}`);
  return defaultConfig({
    name,
    dataDir: path.join(tempDir(), `${name}.etcd`),
    listenClientUrls: [client],
    advertiseClientUrls: [client],
    listenPeerUrls: [peer],
    initialAdvertisePeerUrls: [peer],
    initialCluster: new Map([[name, [peer]]]),
    logLevel: 'error',
  });
}

export interface Member {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  proc: ChildProcess;
  /** everything the process wrote to stderr and stdout so far */
  output(): string;
  /** resolves with the exit code (or signal name) */
  exited: Promise<number | string>;
}

export interface StartOptions {
  name?: string;
  dataDir?: string;
  clientPort?: number;
  peerPort?: number;
  /** extra flags, appended after the generated ones */
  args?: string[];
  env?: Record<string, string>;
  /** do not pass the generated flags at all (configuration through env or file) */
  bare?: boolean;
  /** wait for "ready to serve client requests" (default true) */
  waitReady?: boolean;
  /** which server to run (default: E2E_BINARY's choice); 'etcd' is the installed etcd 3.4 */
  binary?: 'etcd' | 'etcd-ts';
  /** working directory of the process (unix:// URLs name socket files relative to it) */
  cwd?: string;
  /** etcd-ts only: Node flags of the test's own (`--max-old-space-size=...`), which bin/etcd-ts passes after its own */
  nodeFlags?: string[];
}

/**
 * How to run the server: etcd-ts is bin/etcd-ts itself, as users run it (it starts Node
 * with its own flags, and `nodeFlags` after them through ETCDTS_NODE_FLAGS, in `env`).
 */
export function command(args: string[], which: 'etcd' | 'etcd-ts' = binary, nodeFlags: string[] = []): { cmd: string; argv: string[]; env: Record<string, string> } {
  if (which === 'etcd') return { cmd: 'etcd', argv: args, env: {} };
  return { cmd: path.join(repoRoot, 'bin/etcd-ts'), argv: args, env: nodeFlagsEnv(nodeFlags) };
}

export interface TrackedProcess {
  proc: ChildProcess;
  /** stdout and stderr so far, interleaved as they came */
  output(): string;
  /** the exit code, or the signal that ended it */
  exited: Promise<number | string>;
}

/** Spawns a process that killProcesses (and cleanup) kill if it still runs, gathering its output. */
export function spawnTracked(cmd: string, argv: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): TrackedProcess {
  const proc = spawn(cmd, argv, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) =>
    proc.on('exit', (code, signal) => {
      live.delete(proc);
      resolve(code ?? signal ?? -1);
    }),
  );
  return { proc, output: () => out, exited };
}

export async function startMember(opts: StartOptions = {}): Promise<Member> {
  const name = opts.name ?? 'default';
  const dataDir = opts.dataDir ?? path.join(tempDir(), `${name}.etcd`);
  const clientPort = opts.clientPort ?? (await freePort());
  const peerPort = opts.peerPort ?? (await freePort());
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const generated = [
    '--name', name,
    '--data-dir', dataDir,
    '--listen-client-urls', clientUrl,
    '--advertise-client-urls', clientUrl,
    '--listen-peer-urls', peerUrl,
    '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', `${name}=${peerUrl}`,
  ];
  const { cmd, argv, env } = command([...(opts.bare ? [] : generated), ...(opts.args ?? [])], opts.binary, opts.nodeFlags);
  const { proc, output, exited } = spawnTracked(cmd, argv, { cwd: opts.cwd, env: { ...process.env, ...env, ...opts.env } });
  const m: Member = { name, clientUrl, peerUrl, dataDir, proc, output, exited };
  if (opts.waitReady !== false) await waitFor(m, 'ready to serve client requests');
  return m;
}

/**
 * Waits until the member's output contains `text`; fails if it exits first. The default
 * deadline covers a start that catches up through a leader snapshot on a loaded machine
 * (import and apply before the member publishes itself and says it is ready).
 */
export async function waitFor(m: Member, text: string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: number | string | undefined;
  void m.exited.then((c) => (exited = c));
  while (!m.output().includes(text)) {
    if (exited !== undefined) throw new Error(`member ${m.name} exited (${exited}) before "${text}":\n${m.output()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for "${text}" from ${m.name}:\n${m.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function stopMember(m: Member, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | string> {
  if (m.proc.exitCode === null && m.proc.signalCode === null) m.proc.kill(signal);
  return m.exited;
}

export interface CtlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs stock etcdctl (v3 API) against `endpoints`. */
export function etcdctl(endpoints: string | string[], args: string[], input?: string, timeoutMs = 30_000): Promise<CtlResult> {
  const eps = Array.isArray(endpoints) ? endpoints.join(',') : endpoints;
  return runEtcdctl('3', ['--endpoints', eps, ...args], input, timeoutMs);
}

/** Runs stock etcdctl with the v2 API; `args` carry --endpoints when the command needs a member (backup does not). */
export function etcdctlV2(args: string[], timeoutMs = 30_000): Promise<CtlResult> {
  return runEtcdctl('2', args, undefined, timeoutMs);
}

/**
 * etcdctl's own deadlines for one command, a few seconds inside the time the process is given
 * (so it reports what it was waiting for rather than being killed): its defaults (v3: 5 s a
 * command; v2: 2 s a request, 5 s in all) are shorter than a linearizable call can take on a
 * loaded machine. Flags a test passes come later and win, as with any repeated etcdctl flag.
 *
 * With `--user`, the v3 client authenticates while it dials, within `--dial-timeout` (2 s):
 * Authenticate is a ReadIndex and a raft proposal, which took 3.8 s on a follower at load
 * 30 ("context deadline exceeded"). A dial without it is a TCP and HTTP/2 handshake, and
 * tests that expect a dial to fail keep its default.
 */
function deadlineFlags(api: '2' | '3', timeoutMs: number, args: readonly string[]): string[] {
  const d = `${Math.max(1000, timeoutMs - 5000)}ms`;
  if (api === '2') return [`--timeout=${d}`, `--total-timeout=${d}`];
  const authenticates = args.some((a) => a === '--user' || a.startsWith('--user='));
  return authenticates ? [`--command-timeout=${d}`, `--dial-timeout=${d}`] : [`--command-timeout=${d}`];
}

function runEtcdctl(api: '2' | '3', args: string[], input: string | undefined, timeoutMs: number): Promise<CtlResult> {
  return new Promise((resolve) => {
    const child = execFile(
      'etcdctl',
      [...deadlineFlags(api, timeoutMs, args), ...args],
      { env: { ...process.env, ETCDCTL_API: api }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin!.end(input);
    else child.stdin!.end();
  });
}

/** etcdctlV2 against one member; `out` is stdout then stderr, as a terminal shows them. */
export async function etcdctl2(endpoint: string, args: string[], input?: string): Promise<{ code: number; out: string }> {
  const r = await runEtcdctl('2', ['--endpoints', endpoint, ...args], input, 30_000);
  return { code: r.code, out: r.stdout + r.stderr };
}

export interface HttpOptions {
  method?: string;
  /** sent as application/x-www-form-urlencoded */
  form?: Record<string, string>;
  /** sent as it is (curl -d) */
  body?: string;
  headers?: Record<string, string>;
  /** HTTP basic auth (curl -u user:password) */
  auth?: string;
  /** for https: the CA to trust, and a client certificate */
  tls?: { ca: string; cert?: string; key?: string };
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

/** One HTTP/1.1 request, as curl makes it. */
export function httpRequest(url: string, opts: HttpOptions = {}): Promise<HttpResponse> {
  const headers: Record<string, string> = { ...opts.headers };
  let body = opts.body;
  if (opts.form !== undefined) {
    body = new URLSearchParams(opts.form).toString();
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
  }
  const tls = opts.tls === undefined ? {} : { ca: readFileSync(opts.tls.ca), cert: opts.tls.cert && readFileSync(opts.tls.cert), key: opts.tls.key && readFileSync(opts.tls.key) };
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? https : http).request(url, { method: opts.method ?? 'GET', headers, auth: opts.auth, ...tls }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        const hs = new Headers();
        for (const [k, v] of Object.entries(res.headers)) for (const x of [v ?? []].flat()) hs.append(k, x);
        resolve({ status: res.statusCode ?? 0, headers: hs, text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Like etcdctl() but throws unless it exits 0; returns stdout. */
export async function ctl(endpoints: string | string[], args: string[], input?: string): Promise<string> {
  const r = await etcdctl(endpoints, args, input);
  if (r.code !== 0) throw new Error(`etcdctl ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/**
 * Kills (SIGKILL, by PID) every process started so far that still runs, and waits for them.
 * Call from afterEach in files whose cases each start their own members: a member left
 * running after its case heartbeats on, and a file's leftovers add up to a core's share.
 */
export async function killProcesses(): Promise<void> {
  const procs = [...live];
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(procs.map((p) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.on('exit', r)))));
}

/** Has killProcesses (and cleanup) kill `proc` too: a load client a case runs beside its members. */
export function track(proc: ChildProcess): void {
  live.add(proc);
  proc.on('exit', () => live.delete(proc));
}

/** Kills every process still running and removes temp dirs. Call from afterAll. */
export async function cleanup(): Promise<void> {
  await killProcesses();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export interface RunningCtl {
  output(): string;
  stderr(): string;
  write(line: string): void;
  /** resolves once stdout contains `text` (or rejects after the timeout) */
  waitOutput(text: string, timeoutMs?: number): Promise<void>;
  kill(): Promise<void>;
  exited: Promise<number | string>;
}

/**
 * `etcdctl watch ARGS` from the revision after the current one. Without a start revision
 * etcdctl watches from whatever revision the server is at when the watch is created, which
 * can be after a put the test makes right after spawning it: the event is then never shown.
 */
export async function spawnWatch(endpoint: string, args: string[]): Promise<RunningCtl> {
  const header = JSON.parse(await ctl(endpoint, ['get', 'spawn-watch-probe', '-w', 'json'])) as { header: { revision: number } };
  return spawnCtl(endpoint, ['watch', ...args, '--rev', String(header.header.revision + 1)]);
}

/** A long-running etcdctl (watch, lease keep-alive, interactive modes). */
export function spawnCtl(endpoints: string, args: string[]): RunningCtl {
  const proc = spawn('etcdctl', ['--endpoints', endpoints, ...args], {
    env: { ...process.env, ETCDCTL_API: '3' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  live.add(proc);
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((resolve) =>
    proc.on('exit', (code, signal) => {
      live.delete(proc);
      resolve(code ?? signal ?? -1);
    }),
  );
  return {
    output: () => out,
    stderr: () => err,
    write: (line) => proc.stdin.write(line),
    exited,
    async waitOutput(text, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (!out.includes(text)) {
        if (Date.now() > deadline) throw new Error(`etcdctl ${args.join(' ')}: no "${text}" in output:\n${out}\nstderr:\n${err}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
}
