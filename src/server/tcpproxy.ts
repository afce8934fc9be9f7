// `etcd-ts gateway start`: etcd's L4 gateway (proxy/tcpproxy). Every client connection is
// piped whole to one of the endpoints, picked round-robin among those that answer; an
// endpoint that refuses a connection sits out --retry-delay before it is tried again.

import net from 'node:net';
import type { Logger } from 'pino';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface TcpProxyOptions {
  readonly listen: HostPort;
  readonly endpoints: readonly HostPort[];
  /** how long an endpoint that failed a connection is left out */
  readonly retryDelayMs: number;
  readonly log: Logger;
}

export interface TcpProxy {
  /** host:port actually bound */
  readonly address: string;
  close(): Promise<void>;
}

interface Remote {
  readonly addr: HostPort;
  readonly name: string;
  /** ms timestamp before which the endpoint is not tried */
  inactiveUntil: number;
}

export async function startTcpProxy(opts: TcpProxyOptions): Promise<TcpProxy> {
  const remotes: Remote[] = opts.endpoints.map((addr) => ({ addr, name: `${addr.host}:${addr.port}`, inactiveUntil: 0 }));
  const sockets = new Set<net.Socket>();
  let next = 0;

  /** The active endpoints in round-robin order, starting after the last one used. */
  const candidates = (): Remote[] => {
    const now = Date.now();
    const order = remotes.map((_, i) => remotes[(next + i) % remotes.length]!);
    next = (next + 1) % Math.max(1, remotes.length);
    return order.filter((r) => r.inactiveUntil <= now);
  };

  const dial = (r: Remote): Promise<net.Socket> =>
    new Promise((resolve, reject) => {
      const out = net.connect(r.addr.port, r.addr.host);
      out.once('connect', () => {
        out.removeListener('error', reject);
        resolve(out);
      });
      out.once('error', reject);
    });

  const serve = async (client: net.Socket): Promise<void> => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    client.pause();
    for (const r of candidates()) {
      let upstream: net.Socket;
      try {
        upstream = await dial(r);
      } catch (err) {
        r.inactiveUntil = Date.now() + opts.retryDelayMs;
        opts.log.warn({ address: r.name, error: (err as Error).message }, `deactivated endpoint [${r.name}] due to ${(err as Error).message} for ${opts.retryDelayMs / 1000}s`);
        continue;
      }
      if (client.destroyed) {
        upstream.destroy();
        return;
      }
      sockets.add(upstream);
      upstream.on('close', () => {
        sockets.delete(upstream);
        client.destroy();
      });
      upstream.on('error', () => upstream.destroy());
      client.on('close', () => upstream.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
      return;
    }
    opts.log.warn({ 'remote-addr': `${client.remoteAddress}:${client.remotePort}` }, 'no active endpoint to proxy the connection to');
    client.destroy();
  };

  const server = net.createServer((c) => void serve(c));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.listen.port, opts.listen.host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const bound = server.address() as net.AddressInfo;
  const address = `${opts.listen.host}:${bound.port}`;
  opts.log.info({ endpoints: remotes.map((r) => r.name), address }, `ready to proxy client requests to [${remotes.map((r) => r.name).join(' ')}]`);
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
