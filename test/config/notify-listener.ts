// A stand-in for systemd's notify socket: an AF_UNIX datagram socket with SO_PASSCRED, so
// that, like systemd with NotifyAccess=main, it knows which process sent each datagram.
// A small python3 program, since Node cannot open one.

import { spawn, type ChildProcess } from 'node:child_process';

const children: ChildProcess[] = [];

export function stopNotifyListeners(): void {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
}

export interface NotifyListener {
  /** the next datagram as "<sender pid> <text>", waiting for it if it has not arrived yet */
  next(): Promise<{ pid: number; text: string }>;
  stop(): void;
}

/**
 * Binds a datagram socket (a path, or "@name" for the abstract namespace) with SO_PASSCRED,
 * prints "listening", then one line per datagram: the sender's pid from SCM_CREDENTIALS and
 * the text.
 */
export function listenNotify(address: string): Promise<NotifyListener> {
  const script = `
import os, socket, struct, sys
addr = sys.argv[1]
if addr.startswith("@"):
    addr = "\\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(addr)
if not addr.startswith("\\0"):
    os.chmod(addr, 0o666)
print("listening", flush=True)
while True:
    data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = -1
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", payload[:12])[0]
    print(pid, data.decode(), flush=True)
`;
  const child = spawn('python3', ['-c', script, address], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const datagrams: string[] = [];
  const waiting: ((d: string) => void)[] = [];
  const parse = (line: string) => {
    const i = line.indexOf(' ');
    return { pid: Number(line.slice(0, i)), text: line.slice(i + 1) };
  };
  const listener: NotifyListener = {
    next: () => new Promise<string>((r) => (datagrams.length > 0 ? r(datagrams.shift()!) : waiting.push(r))).then(parse),
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

