// `etcd-ts gateway start`: etcd's L4 gateway mode of the same binary (etcdmain/gateway.go).
// Flags: --endpoints (default 127.0.0.1:2379), --listen-addr (default 127.0.0.1:23790),
// --retry-delay (default 1m), and DNS discovery of the endpoints: --discovery-srv,
// --discovery-srv-name, --insecure-discovery, --trusted-ca-file (srv-discovery.ts).

import pino from 'pino';
import type { Logger } from 'pino';
import { parseGoBool, parseGoDuration } from '../src/server/config/values.js';
import { type SrvEndpoint, srvClientEndpoints } from '../src/server/srv-discovery.js';
import { type HostPort, type ProxyEndpoint, startTcpProxy } from '../src/server/tcpproxy.js';

const USAGE = `Usage:
  etcd-ts gateway start [flags]

Flags:
      --discovery-srv string        DNS domain used to bootstrap initial cluster
      --discovery-srv-name string   service name to query when using DNS discovery
      --endpoints strings           comma separated etcd cluster endpoints (default [127.0.0.1:2379])
  -h, --help                        help for start
      --insecure-discovery          accept insecure SRV records
      --listen-addr string          listen address (default "127.0.0.1:23790")
      --retry-delay duration        duration of delay before retrying failed endpoints (default 1m0s)
      --trusted-ca-file string      path to the client server TLS CA file for verifying the discovered endpoints when discovery-srv is provided.
`;
const FLAGS = ['discovery-srv', 'discovery-srv-name', 'endpoints', 'insecure-discovery', 'listen-addr', 'retry-delay', 'trusted-ca-file'];

function usageError(msg: string): never {
  process.stderr.write(`Error: ${msg}\n${USAGE}`);
  process.exit(2);
}

/** host:port, an endpoint's scheme dropped as etcd's gateway drops it. */
function hostPort(s: string, what: string): HostPort {
  const bare = s.replace(/^[a-z]+:\/\//, '').replace(/\/$/, '');
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(bare);
  if (m === null || Number(m[2]) > 65535) usageError(`invalid ${what} ${JSON.stringify(s)} (want host:port)`);
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) };
}

export async function runGateway(argv: readonly string[]): Promise<void> {
  const values = new Map<string, string>();
  let started = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === 'start') {
      started = true;
      continue;
    }
    const m = /^--?([a-z-]+)(?:=(.*))?$/.exec(a);
    if (m === null) usageError(`unknown command ${JSON.stringify(a)} for "etcd-ts gateway"`);
    const name = m[1]!;
    if (name === 'help' || name === 'h') {
      process.stdout.write(USAGE);
      process.exit(0);
    }
    if (!FLAGS.includes(name)) usageError(`unknown flag: --${name}`);
    // a bool flag takes no separate argument, as Go's flag package parses it
    const value = m[2] ?? (name === 'insecure-discovery' ? 'true' : argv[++i]);
    if (value === undefined) usageError(`flag needs an argument: --${name}`);
    values.set(name, value);
  }
  if (!started) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const delay = parseGoDuration(values.get('retry-delay') ?? '1m');
  if (!delay.ok) usageError(`invalid argument ${JSON.stringify(values.get('retry-delay'))} for "--retry-delay" flag: ${delay.reason}`);
  const insecure = parseGoBool(values.get('insecure-discovery') ?? 'false');
  if (!insecure.ok) usageError(`invalid argument ${JSON.stringify(values.get('insecure-discovery'))} for "--insecure-discovery" flag: ${insecure.reason}`);
  const listen = hostPort(values.get('listen-addr') ?? '127.0.0.1:23790', 'listen address');
  const root = pino({ base: undefined, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } });
  const given = (values.get('endpoints') ?? '127.0.0.1:2379').split(',').filter((e) => e !== '');
  const discovered = await discoveredEndpoints(values, insecure.value, root.child({ caller: 'etcdmain' }));
  const endpoints: ProxyEndpoint[] =
    discovered.length > 0
      ? discovered.map((e) => ({ ...hostPort(e.url, 'endpoint'), priority: e.priority, weight: e.weight }))
      : given.map((e) => ({ ...hostPort(e, 'endpoint'), priority: 0, weight: 0 }));
  const log = root.child({ caller: 'tcpproxy' });
  let proxy;
  try {
    proxy = await startTcpProxy({ listen, endpoints, retryDelayMs: delay.value, log });
  } catch (err) {
    log.fatal({ error: (err as Error).message }, 'failed to start the gateway');
    process.exit(1);
  }
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => void proxy.close().then(() => process.exit(0)));
  }
}

/** The endpoints the SRV records of --discovery-srv name, checked as etcd checks them; none without the flag. */
async function discoveredEndpoints(values: ReadonlyMap<string, string>, insecure: boolean, log: Logger): Promise<SrvEndpoint[]> {
  const domain = values.get('discovery-srv') ?? '';
  if (domain === '') return [];
  try {
    return await srvClientEndpoints({ domain, serviceName: values.get('discovery-srv-name') ?? '', insecure, caFile: values.get('trusted-ca-file') ?? '', log });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
}
