// `etcd-ts gateway start`: etcd's L4 gateway (proxy/tcpproxy). Every client connection is
// piped whole to one of the endpoints that answer; an endpoint that refuses a connection
// sits out --retry-delay before it is tried again. Endpoints from SRV records are picked
// as RFC 2782 and etcd's tcpproxy pick them: from the lowest priority with an endpoint
// active, at random by weight (an endpoint of weight 0 there once in a hundred), and in
// turn where none of that priority has a weight. (etcd's tcpproxy takes the turn among
// the active endpoints of every priority then; etcd-ts keeps to the lowest, as the
// records ask.) --endpoints all have priority 0 and weight 0: in turn.

import net from 'node:net';
import type { Logger } from 'pino';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** An endpoint, with its SRV record's priority and weight (0 and 0 for --endpoints). */
export interface ProxyEndpoint extends HostPort {
  readonly priority: number;
  readonly weight: number;
}

export interface TcpProxyOptions {
  readonly listen: HostPort;
  readonly endpoints: readonly ProxyEndpoint[];
  /** how long an endpoint that failed a connection is left out */
  readonly retryDelayMs: number;
  readonly log: Logger;
}

export interface TcpProxy {
  /** host:port actually bound */
  readonly address: string;
  close(): Promise<void>;
}

interface Remote extends ProxyEndpoint {
  readonly name: string;
  /** ms timestamp before which the endpoint is not tried */
  inactiveUntil: number;
}

/**
 * Picks the endpoint for each connection among those `active` says may be tried (see the
 * top of the file); undefined when none may. `random` draws in [0, 1).
 */
export function endpointPicker<T extends { readonly priority: number; readonly weight: number }>(
  endpoints: readonly T[],
  random: () => number = Math.random,
): (active: (e: T) => boolean) => T | undefined {
  let turn = 0;
  return (active) => {
    const live = endpoints.filter(active);
    if (live.length === 0) return undefined;
    const best = Math.min(...live.map((e) => e.priority));
    const tier = live.filter((e) => e.priority === best);
    const weighted = tier.filter((e) => e.weight > 0);
    const unweighted = tier.filter((e) => e.weight === 0);
    if (weighted.length > 0 && !(unweighted.length > 0 && Math.floor(random() * 100) === 1)) {
      let choose = Math.floor(random() * weighted.reduce((sum, e) => sum + e.weight, 0));
      for (const e of weighted) {
        choose -= e.weight;
        if (choose < 0) return e;
      }
    }
    return unweighted[turn++ % unweighted.length];
  };
}

export async function startTcpProxy(opts: TcpProxyOptions): Promise<TcpProxy> {
  const remotes: Remote[] = opts.endpoints.map((e) => ({ ...e, name: `${e.host}:${e.port}`, inactiveUntil: 0 }));
  const sockets = new Set<net.Socket>();
  const pick = endpointPicker(remotes);
  const nextRemote = (): Remote | undefined => pick((r) => r.inactiveUntil <= Date.now());

  const dial = (r: Remote): Promise<net.Socket> =>
    new Promise((resolve, reject) => {
      const out = net.connect(r.port, r.host);
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
    // as etcd: another pick after each endpoint that refuses, until none is left to try
    for (let r = nextRemote(); r !== undefined; r = nextRemote()) {
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
