// Tell systemd the node is ready (Type=notify units), as etcd does once it serves clients:
// the datagram "READY=1" to the AF_UNIX socket named by $NOTIFY_SOCKET.
//
// Node cannot send unix datagrams itself (dgram knows only udp4/udp6), so a helper
// process sends it: `systemd-notify --ready` where installed, else python3. Because the
// sender is a child process, systemd only accepts the message when the unit allows it
// (NotifyAccess=all); we say so in the log. Nothing here ever fails the start.

import { execFile } from 'node:child_process';
import type { Logger } from './logger.js';

export type NotifySender = 'systemd-notify' | 'python3';

export type NotifyOutcome =
  | { readonly sent: true; readonly via: NotifySender }
  | { readonly sent: false; readonly reason: string };

export interface NotifyOptions {
  /** defaults to process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly logger?: Logger;
  /** helpers to try, in order */
  readonly senders?: readonly NotifySender[];
  /** per helper; systemd-notify waits for systemd to acknowledge (a barrier) */
  readonly timeoutMs?: number;
}

// Abstract-namespace sockets are written "@name" in $NOTIFY_SOCKET and "\0name" to the kernel.
const PYTHON_SENDER = `
import os, socket, sys
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(addr)
s.sendall(sys.argv[1].encode())
`;

function run(file: string, args: string[], env: Record<string, string | undefined>, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(file, args, { env: env as NodeJS.ProcessEnv, timeout: timeoutMs }, (err, _stdout, stderr) => {
      if (!err) return resolve(undefined);
      const code = (err as NodeJS.ErrnoException).code;
      resolve(code === 'ENOENT' ? 'not installed' : (String(stderr).trim() || err.message));
    });
  });
}

/** Send READY=1 when $NOTIFY_SOCKET is set; resolves with what happened, never rejects. */
export async function notifyReady(opts: NotifyOptions = {}): Promise<NotifyOutcome> {
  const env = { ...(opts.env ?? process.env) };
  const socket = env['NOTIFY_SOCKET'];
  const log = opts.logger;
  if (socket === undefined || socket === '') return { sent: false, reason: 'NOTIFY_SOCKET is not set' };
  if (!socket.startsWith('/') && !socket.startsWith('@')) {
    const reason = `unsupported NOTIFY_SOCKET address ${JSON.stringify(socket)}`;
    log?.warn({ 'notify-socket': socket, error: reason }, 'failed to notify systemd for readiness');
    return { sent: false, reason };
  }
  log?.info({ 'notify-socket': socket }, 'notifying init daemon');
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const failures: string[] = [];
  for (const sender of opts.senders ?? ['systemd-notify', 'python3']) {
    const failure =
      sender === 'systemd-notify'
        ? await run('systemd-notify', ['--ready'], env, timeoutMs)
        : await run('python3', ['-c', PYTHON_SENDER, 'READY=1'], env, timeoutMs);
    if (failure === undefined) {
      log?.info(
        { via: sender, 'notify-socket': socket },
        'successfully notified init daemon (sent by a helper process: a systemd unit needs NotifyAccess=all to accept it)',
      );
      return { sent: true, via: sender };
    }
    failures.push(`${sender}: ${failure}`);
  }
  const reason = failures.join('; ');
  log?.warn({ 'notify-socket': socket, error: reason }, 'failed to notify systemd for readiness');
  return { sent: false, reason };
}
