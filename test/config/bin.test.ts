// The built command (`node bin/etcd-ts`, and bin/etcd-ts run as a command) as a child
// process: exit codes and messages for bad input, compared with etcd 3.4.23's; a clean
// stop on SIGTERM; READY=1 to a NOTIFY_SOCKET once the member serves clients; the Node
// flags the command starts Node with.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listenNotify, stopNotifyListeners } from './notify-listener.js';
import { freePort } from '../../bench/free-port.js';

const root = new URL('../../', import.meta.url).pathname;
const bin = join(root, 'bin/etcd-ts');
const dir = mkdtempSync(join(tmpdir(), 'config-eng-bin-'));
chmodSync(dir, 0o755);
/** uid and gid of nobody/nogroup */
const NOBODY = 65534;
const children: ChildProcess[] = [];

// dist/ is built by `npm test` (scripts/test.sh) before any suite runs: rebuilding it
// here would swap files under the other suites' running processes.
afterAll(() => {
  stopNotifyListeners();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile('node', [bin, ...args], { env: { PATH: process.env['PATH']!, ...env } }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? null) : 0;
      resolve({ code: typeof code === 'number' ? code : null, stdout, stderr });
    });
  });
}

const firstLine = (s: string) => s.split('\n')[0];

describe('etcd-ts command line: bad input', () => {
  it('an unknown flag exits 2 with etcd\'s message and the usage', async () => {
    // etcd 3.4.23: rc=2, "flag provided but not defined: -bogus" then the usage, on stderr
    const r = await run(['--bogus']);
    expect(r.code).toBe(2);
    expect(firstLine(r.stderr)).toBe('flag provided but not defined: -bogus');
    expect(r.stderr).toContain('Usage:');
    expect(r.stdout).toBe('');
  });
  it('a malformed value exits 2', async () => {
    // etcd 3.4.23: rc=2, invalid value "abc" for flag -heartbeat-interval: parse error
    const r = await run(['--heartbeat-interval=abc']);
    expect(r.code).toBe(2);
    expect(firstLine(r.stderr)).toBe('invalid value "abc" for flag -heartbeat-interval: parse error');
  });
  it('a flag missing its value exits 2', async () => {
    const r = await run(['--name']);
    expect(r.code).toBe(2);
    expect(firstLine(r.stderr)).toBe('flag needs an argument: -name');
  });
  it('an ETCD_* variable next to the same flag exits 1', async () => {
    // etcd 3.4.23: rc=1, conflicting environment variable "ETCD_NAME" is shadowed by ...
    const r = await run(['--name=a'], { ETCD_NAME: 'a' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('conflicting environment variable "ETCD_NAME" is shadowed by corresponding command-line flag');
  });
  it('an invalid combination exits 1', async () => {
    // etcd 3.4.23: rc=1, error verifying flags, --election-timeout[200ms] should be at least as 5 times as --heartbeat-interval[100ms]. See 'etcd --help'.
    const r = await run(['--heartbeat-interval=100', '--election-timeout=200']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("error verifying flags, --election-timeout[200ms] should be at least as 5 times as --heartbeat-interval[100ms]. See 'etcd-ts --help'.\n");
  });
  it('a stray argument exits 1', async () => {
    // etcd 3.4.23: rc=1, error verifying flags, 'extra-arg' is not a valid flag. See 'etcd --help'.
    const r = await run(['extra-arg']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("error verifying flags, 'extra-arg' is not a valid flag. See 'etcd-ts --help'.\n");
  });
  it('a log output it cannot open exits 1 naming it', async () => {
    const r = await run(['--log-outputs', join(dir, 'missing', 'etcd.log')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot open log output');
  });
  it('--version and --help exit 0 on stdout', async () => {
    const v = await run(['--version']);
    expect(v.code).toBe(0);
    expect(firstLine(v.stdout)).toBe('etcd Version: 3.4.23');
    const h = await run(['--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('--listen-client-urls');
  });
});

/** A member on free loopback ports with its own data dir; lines of its log as they come. */
/**
 * `asNobody`: run as an unprivileged user, as distribution units run etcd (User=etcd).
 * `asCommand`: bin/etcd-ts executed itself, as systemd and a shell run it, rather than
 * handed to node.
 */
async function startMember(env: Record<string, string> = {}, opts: { asNobody?: boolean; asCommand?: boolean } = {}) {
  const client = await freePort();
  const peer = await freePort();
  const dataDir = mkdtempSync(join(dir, 'member-'));
  if (opts.asNobody) chownSync(dataDir, NOBODY, NOBODY);
  const command = opts.asCommand ? [bin] : ['node', bin];
  const [file, ...before] = opts.asNobody ? ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', ...command] : command;
  const child = spawn(
    file!,
    [
      ...before,
      '--name=m1',
      `--data-dir=${dataDir}`,
      `--listen-client-urls=http://127.0.0.1:${client}`,
      `--advertise-client-urls=http://127.0.0.1:${client}`,
      `--listen-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
    ],
    { env: { PATH: process.env['PATH']!, ...env }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.push(child);
  const lines: { msg?: string; level?: string }[] = [];
  const waiters: { pred: (l: { msg?: string }) => boolean; resolve: () => void }[] = [];
  let buf = '';
  child.stderr!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let rec: { msg?: string };
      try {
        rec = JSON.parse(line) as { msg?: string };
      } catch {
        rec = { msg: line };
      }
      lines.push(rec);
      for (const w of [...waiters]) {
        if (w.pred(rec)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const waitFor = (msg: string) =>
    new Promise<void>((resolve, reject) => {
      if (lines.some((l) => l.msg === msg)) return resolve();
      waiters.push({ pred: (l) => l.msg === msg, resolve });
      exited.then((code) => reject(new Error(`etcd-ts exited (${code}) before logging "${msg}": ${JSON.stringify(lines)}`)));
    });
  return { child, lines, waitFor, exited };
}

describe('etcd-ts lifecycle', () => {
  it('SIGTERM logs "received signal; shutting down", closes the member and exits 0', async () => {
    const m = await startMember();
    await m.waitFor('starting an etcd server');
    m.child.kill('SIGTERM');
    expect(await m.exited).toBe(0);
    expect(m.lines.map((l) => l.msg)).toContain('received signal; shutting down');
  });

  it('sends READY=1 and STOPPING=1 from its own process, running unprivileged, as NotifyAccess=main requires', async () => {
    // systemd accepts a datagram from the unit's main process only: the listener reads the
    // sender's pid from the kernel (SO_PASSCRED). Unprivileged, the member cannot claim
    // another pid in its credentials, as root could.
    const sock = join(dir, 'notify.sock');
    const listener = await listenNotify(sock);
    // run as systemd runs it: bin/etcd-ts execs node, so the member is still the unit's main process
    const m = await startMember({ NOTIFY_SOCKET: sock }, { asNobody: true, asCommand: true });
    await m.waitFor('ready to serve client requests');
    expect(await listener.next()).toEqual({ pid: m.child.pid, text: 'READY=1' });
    m.child.kill('SIGTERM');
    expect(await listener.next()).toEqual({ pid: m.child.pid, text: 'STOPPING=1' });
    expect(await m.exited).toBe(0);
    listener.stop();
  });
});

describe('the Node flags bin/etcd-ts starts Node with, run as a command', () => {
  /** The member's own command line, as the kernel has it. */
  const nodeArgvOf = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);

  it("bounds V8's young generation at two semi-spaces of 8 MB, in the process that was started", async () => {
    const m = await startMember({}, { asCommand: true });
    await m.waitFor('starting an etcd server');
    const argv = nodeArgvOf(m.child.pid!);
    expect(argv.slice(1, 3)).toEqual(['--max-semi-space-size=8', bin]);
    expect(argv[0]).toMatch(/(^|\/)node$/);
    m.child.kill('SIGTERM');
    expect(await m.exited).toBe(0);
  });

  it('adds the flags in ETCDTS_NODE_FLAGS after its own', async () => {
    const m = await startMember({ ETCDTS_NODE_FLAGS: '--max-semi-space-size=0 --stack-trace-limit=20' }, { asCommand: true });
    await m.waitFor('starting an etcd server');
    expect(nodeArgvOf(m.child.pid!).slice(1, 5)).toEqual(['--max-semi-space-size=8', '--max-semi-space-size=0', '--stack-trace-limit=20', bin]);
    m.child.kill('SIGTERM');
    expect(await m.exited).toBe(0);
  });
});

describe('which build bin/etcd-ts runs', () => {
  /** A checkout holding bin/etcd-ts and two stand-in builds that print their name, with the given modification times. */
  function checkout(builds: { bundle?: number; compiled: number }): string {
    const at = mkdtempSync(join(dir, 'checkout-'));
    mkdirSync(join(at, 'bin'));
    copyFileSync(bin, join(at, 'bin/etcd-ts'));
    writeFileSync(join(at, 'package.json'), JSON.stringify({ type: 'module' }));
    const stand = (file: string, name: string, seconds: number) => {
      mkdirSync(dirname(join(at, file)), { recursive: true });
      writeFileSync(join(at, file), `export function run() { process.stdout.write(${JSON.stringify(name)}); }\n`);
      utimesSync(join(at, file), seconds, seconds);
    };
    stand('dist/bin/main.js', 'compiled', builds.compiled);
    if (builds.bundle !== undefined) stand('dist/bundle/main.js', 'bundle', builds.bundle);
    return at;
  }
  const runIn = (at: string) =>
    new Promise<string>((resolve, reject) => execFile('node', [join(at, 'bin/etcd-ts')], (err, stdout) => (err ? reject(err) : resolve(stdout))));

  it('the bundle, when it was built after tsc compiled dist/', async () => {
    expect(await runIn(checkout({ compiled: 1_000_000, bundle: 1_000_010 }))).toBe('bundle');
  });

  it('the compiled dist/bin/main.js, when tsc ran after the bundle was built (it would run stale code)', async () => {
    expect(await runIn(checkout({ compiled: 1_000_010, bundle: 1_000_000 }))).toBe('compiled');
  });

  it('the compiled dist/bin/main.js, when there is no bundle', async () => {
    expect(await runIn(checkout({ compiled: 1_000_000 }))).toBe('compiled');
  });
});
