// A loopback port nobody listens on right now and no other process of ours has been handed,
// for the servers that benches, tests and the jepsen harness start.

import net from 'node:net';

export interface PortRange {
  low: number;
  high: number;
}

/**
 * Ports are picked below the kernel's ephemeral range (net.ipv4.ip_local_port_range starts
 * at 32768 by default): a port from that range can be taken between the pick and the
 * server's bind by any outgoing connection on the machine (an etcdctl, a peer dial), which
 * made a member fail now and then with "bind: address already in use".
 */
const PORT_RANGE: PortRange = { low: 15_000, high: 32_767 };

/**
 * Never offered: etcd's own end-to-end suite (/work/shared/e2e, run beside ours on a shared
 * machine) binds fixed ports from 20000 up (tests/e2e/cluster_test.go: member i on 20000 + 5i,
 * its peer and metrics ports next to it), and a member of ours that picked one of them failed
 * to start with "bind: address already in use".
 */
const ETCD_E2E_PORTS: PortRange = { low: 20_000, high: 20_099 };

/**
 * The reservations this process holds, one per port handed out: a listening unix socket in
 * Linux's abstract namespace, named by the port. Only one process can listen on a name, so
 * a port handed out here is handed out to no other process (vitest's workers, the children
 * they start, a second `npm test` on the machine) for as long as this one runs: each
 * remembering only its own ports, two workers once drew the same port before either bound
 * it, and a member failed with "bind: address already in use". The kernel drops the name
 * when the process exits, however it exits: nothing to reclaim, no file left behind, and
 * the namespace is the network namespace's, the same scope as the ports themselves.
 */
const reservations = new Map<number, net.Server>();

export async function freePort(range: PortRange = PORT_RANGE): Promise<number> {
  const size = range.high - range.low + 1;
  // random draws visit every port of the range long before this many: the range is used up
  for (let draws = 0; draws < 100 * size; draws++) {
    const port = range.low + Math.floor(Math.random() * size);
    if (reservations.has(port) || (port >= ETCD_E2E_PORTS.low && port <= ETCD_E2E_PORTS.high)) continue;
    // reserved before the bind check: a port another process reserved and has not bound yet
    // passes that check
    if (!(await reserve(port))) continue;
    if (await canBind(port)) return port;
  }
  throw new Error(`no free port left in ${range.low}-${range.high}`);
}

/** Takes the port's reservation; false when another process holds it. */
function reserve(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? resolve(false) : reject(err)));
    s.listen({ path: `\0etcd-ts-port-${port}` }, () => {
      s.unref(); // held, but never what keeps a process from exiting
      reservations.set(port, s);
      resolve(true);
    });
  });
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.on('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
