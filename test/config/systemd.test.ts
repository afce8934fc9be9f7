// notifyReady against a real AF_UNIX datagram socket, played by a small python3
// listener since Node cannot open one.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/server/logger.js';
import { notifyReady } from '../../src/server/systemd.js';

const dir = mkdtempSync(join(tmpdir(), 'config-eng-notify-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Bind a datagram socket (a path, or "@name" for the abstract namespace), print
 * "listening", then print every datagram received (systemd-notify also sends a
 * BARRIER=1 after READY=1 and waits for its file descriptor to be closed, which
 * happens when the listener reads it without taking the descriptor).
 */
interface Listener {
  /** the next datagram, waiting for it if it has not arrived yet */
  next(): Promise<string>;
  stop(): void;
}

function listen(address: string): Promise<Listener> {
  const script = `
import socket, sys
addr = sys.argv[1]
if addr.startswith("@"):
    addr = "\\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(addr)
print("listening", flush=True)
while True:
    print(s.recv(4096).decode(), flush=True)
`;
  const child = spawn('python3', ['-c', script, address], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const datagrams: string[] = [];
  const waiting: ((d: string) => void)[] = [];
  const listener: Listener = {
    next: () => new Promise((r) => (datagrams.length > 0 ? r(datagrams.shift()!) : waiting.push(r))),
    stop: () => child.kill('SIGKILL'),
  };
  return new Promise((resolve, reject) => {
    let buf = '';
    child.on('error', reject);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line === 'listening') resolve(listener);
        else if (waiting.length > 0) waiting.shift()!(line);
        else datagrams.push(line);
      }
    });
  });
}

describe('notifyReady', () => {
  it('does nothing without NOTIFY_SOCKET', async () => {
    expect(await notifyReady({ env: {} })).toEqual({ sent: false, reason: 'NOTIFY_SOCKET is not set' });
  });

  it('sends READY=1 through python3 to a socket path', async () => {
    const path = join(dir, 'notify.sock');
    const l = await listen(path);
    const r = await notifyReady({ env: { NOTIFY_SOCKET: path, PATH: process.env['PATH'] }, senders: ['python3'] });
    expect(r).toEqual({ sent: true, via: 'python3' });
    expect(await l.next()).toBe('READY=1');
    l.stop();
  });

  it('reaches abstract-namespace sockets ("@name")', async () => {
    const name = `@config-eng-notify-${process.pid}`;
    const l = await listen(name);
    const r = await notifyReady({ env: { NOTIFY_SOCKET: name, PATH: process.env['PATH'] }, senders: ['python3'] });
    expect(r.sent).toBe(true);
    expect(await l.next()).toBe('READY=1');
    l.stop();
  });

  it('with the default helpers, READY=1 arrives (systemd-notify where installed, else python3)', async () => {
    const path = join(dir, 'notify-default.sock');
    const l = await listen(path);
    const r = await notifyReady({ env: { NOTIFY_SOCKET: path, PATH: process.env['PATH'] } });
    expect(r.sent).toBe(true);
    expect(await l.next()).toBe('READY=1');
    l.stop();
  });

  it('never throws: a socket nobody listens on is reported, and logged', async () => {
    const warnings: unknown[] = [];
    const logger = {
      info: () => undefined,
      warn: (obj: unknown, msg: string) => void warnings.push([obj, msg]),
    } as unknown as Logger;
    const r = await notifyReady({ env: { NOTIFY_SOCKET: join(dir, 'nobody.sock'), PATH: process.env['PATH'] }, logger });
    expect(r.sent).toBe(false);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toEqual([expect.objectContaining({ 'notify-socket': join(dir, 'nobody.sock') }), 'failed to notify systemd for readiness']);
  });

  it('refuses addresses it cannot reach (e.g. vsock) without trying', async () => {
    const r = await notifyReady({ env: { NOTIFY_SOCKET: 'vsock:2:1234' } });
    expect(r).toEqual({ sent: false, reason: 'unsupported NOTIFY_SOCKET address "vsock:2:1234"' });
  });
});
