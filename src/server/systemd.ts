// Tell systemd how the member is doing (Type=notify units), as etcd does: the datagram
// "READY=1" to the AF_UNIX socket named by $NOTIFY_SOCKET once it serves clients, and
// "STOPPING=1" when it shuts down.
//
// Node cannot send unix datagrams (dgram knows only udp4/udp6), and a helper process will
// not do: systemd's default NotifyAccess=main accepts only datagrams whose sender (by the
// kernel's SCM_CREDENTIALS) is the unit's main process. So the member's own process calls
// libc's socket() and sendto() through koffi (a maintained FFI with prebuilt binaries in
// its npm package). Nothing here ever fails the start.

import { loadLibc } from '../pkg/libc.js';
import type { Logger } from './logger.js';

export type NotifyOutcome = { readonly sent: true } | { readonly sent: false; readonly reason: string };

export interface NotifyOptions {
  /** defaults to process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly logger?: Logger;
}

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
/** never block the event loop on a full receive queue */
const MSG_DONTWAIT = 0x40;
/** sizeof(sockaddr_un.sun_path) */
const SUN_PATH_BYTES = 108;

interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  sendto(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrlen: number): number;
  close(fd: number): number;
}

let libc: Libc | undefined;

/** Bound on first use only: a member started without $NOTIFY_SOCKET never loads the FFI. */
function bindLibc(): Libc {
  if (libc === undefined) {
    const { lib } = loadLibc();
    libc = {
      socket: lib.func('int socket(int domain, int type, int protocol)'),
      sendto: lib.func('intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)'),
      close: lib.func('int close(int fd)'),
    };
  }
  return libc;
}

/** sockaddr_un for a path, or for "@name" in the abstract namespace ("\0name", no terminator). */
function sockaddrUn(address: string): Buffer {
  const abstract = address.startsWith('@');
  const name = abstract ? Buffer.concat([Buffer.from([0]), Buffer.from(address.slice(1))]) : Buffer.from(address);
  if (name.length + (abstract ? 0 : 1) > SUN_PATH_BYTES) throw new Error(`NOTIFY_SOCKET ${JSON.stringify(address)} is longer than a unix socket address`);
  const addr = Buffer.alloc(2 + name.length + (abstract ? 0 : 1));
  addr.writeUInt16LE(AF_UNIX, 0);
  name.copy(addr, 2);
  return addr;
}

/** One datagram from this very process to `address`; throws with errno's name on failure. */
function sendDatagram(address: string, state: string): void {
  const c = bindLibc();
  const addr = sockaddrUn(address);
  const fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error(`socket: ${errnoText()}`);
  try {
    const msg = Buffer.from(state);
    if (c.sendto(fd, msg, msg.length, MSG_DONTWAIT, addr, addr.length) < 0) throw new Error(`sendto ${address}: ${errnoText()}`);
  } finally {
    c.close(fd);
  }
}

function errnoText(): string {
  const errno = loadLibc().koffi.errno();
  const names: Record<number, string> = { 2: 'no such file or directory', 13: 'permission denied', 11: 'resource temporarily unavailable', 111: 'connection refused' };
  return names[errno] ?? `errno ${errno}`;
}

/** Sends `state` (e.g. "READY=1") when $NOTIFY_SOCKET is set; resolves with what happened, never rejects. */
export function notify(state: string, opts: NotifyOptions = {}): NotifyOutcome {
  const socket = (opts.env ?? process.env)['NOTIFY_SOCKET'];
  const log = opts.logger;
  if (socket === undefined || socket === '') return { sent: false, reason: 'NOTIFY_SOCKET is not set' };
  if (!socket.startsWith('/') && !socket.startsWith('@')) {
    const reason = `unsupported NOTIFY_SOCKET address ${JSON.stringify(socket)}`;
    log?.warn({ 'notify-socket': socket, error: reason }, `failed to notify systemd (${state})`);
    return { sent: false, reason };
  }
  try {
    sendDatagram(socket, state);
  } catch (err) {
    const reason = (err as Error).message;
    log?.warn({ 'notify-socket': socket, error: reason }, `failed to notify systemd (${state})`);
    return { sent: false, reason };
  }
  return { sent: true };
}

/** READY=1, with etcd's log lines around it. */
export function notifyReady(opts: NotifyOptions = {}): NotifyOutcome {
  const socket = (opts.env ?? process.env)['NOTIFY_SOCKET'];
  if (socket !== undefined && socket !== '') opts.logger?.info({ 'notify-socket': socket }, 'notifying init daemon');
  const r = notify('READY=1', opts);
  if (r.sent) opts.logger?.info({ 'notify-socket': socket }, 'successfully notified init daemon');
  return r;
}
