// `etcd-ts gateway start`: etcd's L4 gateway mode of the same binary (etcdmain/gateway.go).
// Flags: --endpoints (default 127.0.0.1:2379), --listen-addr (default 127.0.0.1:23790),
// --retry-delay (default 1m). DNS discovery (--discovery-srv ...) is refused by name.

import pino from 'pino';
import { parseGoDuration } from '../src/server/config/values.js';
import { type HostPort, startTcpProxy } from '../src/server/tcpproxy.js';

const USAGE = `Usage:
  etcd-ts gateway start [flags]

Flags:
      --endpoints strings      comma separated etcd cluster endpoints (default [127.0.0.1:2379])
      --listen-addr string     listen address (default "127.0.0.1:23790")
      --retry-delay duration   duration of delay before retrying failed endpoints (default 1m0s)
`;
const UNSUPPORTED = new Set(['discovery-srv', 'discovery-srv-name', 'insecure-discovery', 'trusted-ca-file']);

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
    if (UNSUPPORTED.has(name)) {
      process.stderr.write(`etcd-ts gateway: --${name} (DNS discovery) is not supported by etcd-ts; list the members with --endpoints\n`);
      process.exit(1);
    }
    if (!['endpoints', 'listen-addr', 'retry-delay'].includes(name)) usageError(`unknown flag: --${name}`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) usageError(`flag needs an argument: --${name}`);
    values.set(name, value);
  }
  if (!started) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const delay = parseGoDuration(values.get('retry-delay') ?? '1m');
  if (!delay.ok) usageError(`invalid argument ${JSON.stringify(values.get('retry-delay'))} for "--retry-delay" flag: ${delay.reason}`);
  const endpoints = (values.get('endpoints') ?? '127.0.0.1:2379').split(',').filter((e) => e !== '').map((e) => hostPort(e, 'endpoint'));
  const listen = hostPort(values.get('listen-addr') ?? '127.0.0.1:23790', 'listen address');
  const log = pino({ base: undefined, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } }).child({ caller: 'tcpproxy' });
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
