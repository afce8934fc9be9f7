// A loopback port nobody listens on right now, for the servers that benches, tests and the
// jepsen harness start.

import net from 'node:net';

/**
 * Ports are picked below the kernel's ephemeral range (net.ipv4.ip_local_port_range starts
 * at 32768 by default): a port from that range can be taken between the pick and the
 * server's bind by any outgoing connection on the machine (an etcdctl, a peer dial), which
 * made a member fail now and then with "bind: address already in use".
 */
const PORT_RANGE = { low: 15_000, high: 32_767 };

/**
 * Never offered: etcd's own end-to-end suite (/work/shared/e2e, run beside ours on a shared
 * machine) binds fixed ports from 20000 up (tests/e2e/cluster_test.go: member i on 20000 + 5i,
 * its peer and metrics ports next to it), and a member of ours that picked one of them failed
 * to start with "bind: address already in use".
 */
const ETCD_E2E_PORTS = { low: 20_000, high: 20_099 };

/** Ports this process has handed out: never offered twice (a client and a peer port picked one after the other must differ). */
const handedOut = new Set<number>();

export async function freePort(): Promise<number> {
  for (;;) {
    const port = PORT_RANGE.low + Math.floor(Math.random() * (PORT_RANGE.high - PORT_RANGE.low + 1));
    if (handedOut.has(port) || (port >= ETCD_E2E_PORTS.low && port <= ETCD_E2E_PORTS.high)) continue;
    handedOut.add(port);
    if (await canBind(port)) return port;
  }
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.on('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
