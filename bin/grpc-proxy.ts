// `etcd-ts grpc-proxy start`: etcd 3.4's gRPC proxy mode of the same binary, with its
// flags, defaults, messages and exit codes (etcdmain/grpc_proxy.go): a flag error or a
// refusal to start prints to stderr and exits 1, as etcd's cobra command does.

import { parseGoBool, parseGoInt, INT64_MAX, INT64_MIN, UINT32_MAX } from '../src/server/config/values.js';
import type { Logger } from 'pino';
import { createLogger, moduleLogger } from '../src/server/logger.js';

type Kind = 'string' | 'bool' | 'int' | 'uint32' | 'strings';
interface Flag { kind: Kind; def: string; usage: string }

/** etcd 3.4's grpc-proxy start flags, with its defaults and help. */
const FLAGS: Record<string, Flag> = {
  'advertise-client-url': { kind: 'string', def: '127.0.0.1:23790', usage: 'advertise address to register (must be reachable by client)' },
  'auto-tls': { kind: 'bool', def: 'false', usage: 'proxy TLS using generated certificates' },
  cacert: { kind: 'string', def: '', usage: 'verify certificates of TLS-enabled secure etcd servers using this CA bundle' },
  cert: { kind: 'string', def: '', usage: 'identify secure connections with etcd servers using this TLS certificate file' },
  'cert-file': { kind: 'string', def: '', usage: 'identify secure connections to the proxy using this TLS certificate file' },
  'client-crl-file': { kind: 'string', def: '', usage: 'proxy client certificate revocation list file.' },
  'data-dir': { kind: 'string', def: 'default.proxy', usage: 'Data directory for persistent data' },
  debug: { kind: 'bool', def: 'false', usage: 'Enable debug-level logging for grpc-proxy.' },
  'discovery-srv': { kind: 'string', def: '', usage: 'domain name to query for SRV records describing cluster endpoints' },
  'discovery-srv-name': { kind: 'string', def: '', usage: 'service name to query when using DNS discovery' },
  'enable-pprof': { kind: 'bool', def: 'false', usage: 'Enable runtime profiling data via HTTP server. Address is at client URL + "/debug/pprof/"' },
  endpoints: { kind: 'strings', def: '127.0.0.1:2379', usage: 'comma separated etcd cluster endpoints' },
  'experimental-leasing-prefix': { kind: 'string', def: '', usage: 'leasing metadata prefix for disconnected linearized reads.' },
  'experimental-serializable-ordering': { kind: 'bool', def: 'false', usage: 'Ensure serializable reads have monotonically increasing store revisions across endpoints.' },
  'insecure-discovery': { kind: 'bool', def: 'false', usage: 'accept insecure SRV records' },
  'insecure-skip-tls-verify': { kind: 'bool', def: 'false', usage: 'skip authentication of etcd server TLS certificates (CAUTION: this option should be enabled only for testing purposes)' },
  key: { kind: 'string', def: '', usage: 'identify secure connections with etcd servers using this TLS key file' },
  'key-file': { kind: 'string', def: '', usage: 'identify secure connections to the proxy using this TLS key file' },
  'listen-addr': { kind: 'string', def: '127.0.0.1:23790', usage: 'listen address' },
  'listen-cipher-suites': { kind: 'strings', def: '', usage: 'Comma-separated list of supported TLS cipher suites between client/proxy (empty will be auto-populated by Go).' },
  'max-concurrent-streams': { kind: 'uint32', def: '4294967295', usage: 'Maximum concurrent streams that each client can open at a time.' },
  'max-recv-bytes': { kind: 'int', def: '2147483647', usage: 'message receive limits in bytes (default value is math.MaxInt32)' },
  'max-send-bytes': { kind: 'int', def: '1572864', usage: 'message send limits in bytes (default value is 1.5 MiB)' },
  'metrics-addr': { kind: 'string', def: '', usage: 'listen for endpoint /metrics requests on an additional interface' },
  namespace: { kind: 'string', def: '', usage: 'string to prefix to all keys for namespacing requests' },
  'resolver-prefix': { kind: 'string', def: '', usage: 'prefix to use for registering proxy (must be shared with other grpc-proxy members)' },
  'resolver-ttl': { kind: 'int', def: '0', usage: 'specify TTL, in seconds, when registering proxy endpoints' },
  'trusted-ca-file': { kind: 'string', def: '', usage: 'verify certificates of TLS-enabled secure proxy using this CA bundle' },
};

/** Accepted, not acted on: each one set earns a warning at start. */
const NOT_IMPLEMENTED: Record<string, string> = {
  'experimental-serializable-ordering': 'serializable reads are not kept in revision order across endpoints',
  'experimental-leasing-prefix': 'reads are not served from leases',
};

function usage(): string {
  const rows: Array<readonly [string, string]> = Object.entries(FLAGS).map(([name, f]) => {
    const type = f.kind === 'bool' ? '' : ` ${f.kind === 'strings' ? 'strings' : f.kind}`;
    const def = f.def === '' || f.def === 'false' || f.def === '0' ? '' : f.kind === 'string' ? ` (default "${f.def}")` : f.kind === 'strings' ? ` (default [${f.def}])` : ` (default ${f.def})`;
    return [`      --${name}${type}`, `${f.usage}${def}`] as const;
  });
  rows.push(['  -h, --help', 'help for start']);
  rows.sort((a, b) => a[0].trim().replace(/^-h, /, '').localeCompare(b[0].trim().replace(/^-h, /, '')));
  const width = Math.max(...rows.map(([l]) => l.length)) + 3;
  return `Usage:\n  etcd-ts grpc-proxy start [flags]\n\nFlags:\n${rows.map(([l, r]) => l.padEnd(width) + r).join('\n')}\n`;
}

/** A flag error: cobra's "Error: ..." and the usage, then etcd's one-line repeat; exit 1. */
function flagError(msg: string): never {
  process.stderr.write(`Error: ${msg}\n${usage()}\n${msg}\n`);
  process.exit(1);
}

/** etcd prints a start refusal alone on stderr and exits 1. */
function refuse(msg: string): never {
  process.stderr.write(`${msg}\n`);
  process.exit(1);
}

type Values = Map<string, string>;

function parseArgs(argv: readonly string[]): Values {
  const values: Values = new Map();
  let sub: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^--?([a-zA-Z0-9-]+)(?:=(.*))?$/s.exec(a);
    if (m === null) {
      if (sub === undefined && a === 'start') {
        sub = a;
        continue;
      }
      if (sub === undefined) flagError(`unknown command ${JSON.stringify(a)} for "etcd-ts grpc-proxy"`);
      continue; // cobra ignores arguments a command takes none of
    }
    const name = m[1]!;
    if (name === 'help' || name === 'h') {
      process.stdout.write(sub === undefined ? 'grpc-proxy related command\n\nUsage:\n  etcd-ts grpc-proxy [command]\n\nAvailable Commands:\n  start       start the grpc proxy\n' : `start the grpc proxy\n\n${usage()}`);
      process.exit(0);
    }
    const flag = FLAGS[name];
    if (flag === undefined || (name.length === 1 && !a.startsWith('--'))) flagError(`unknown ${a.startsWith('--') ? 'flag' : 'shorthand flag'}: ${a.startsWith('--') ? `--${name}` : `'${name}' in ${a}`}`);
    let value = m[2];
    if (value === undefined) {
      if (flag.kind === 'bool') value = 'true';
      else {
        value = argv[++i];
        if (value === undefined) flagError(`flag needs an argument: --${name}`);
      }
    }
    // string slices accumulate, as pflag's do
    values.set(name, flag.kind === 'strings' && values.has(name) ? `${values.get(name)},${value}` : value);
  }
  if (sub === undefined) {
    process.stdout.write('grpc-proxy related command\n\nUsage:\n  etcd-ts grpc-proxy [command]\n\nAvailable Commands:\n  start       start the grpc proxy\n');
    process.exit(0);
  }
  return values;
}

/** Typed flag values, each checked as pflag checks it. */
function reader(values: Values) {
  const raw = (name: string): string => values.get(name) ?? FLAGS[name]!.def;
  const bad = (name: string, reason: string): never => flagError(`invalid argument ${JSON.stringify(values.get(name))} for "--${name}" flag: ${reason}`);
  return {
    string: raw,
    // in the order given: the first endpoint serves /metrics
    strings: (name: string): string[] => raw(name).split(',').map((x) => x.trim()).filter((x) => x !== ''),
    bool: (name: string): boolean => {
      const p = parseGoBool(raw(name));
      return p.ok ? p.value : bad(name, p.reason);
    },
    int: (name: string, min = INT64_MIN, max = INT64_MAX): number => {
      const p = parseGoInt(raw(name), min, max);
      return p.ok ? p.value : bad(name, p.reason);
    },
    uint32: (name: string): number => {
      const p = parseGoInt(raw(name), 0n, UINT32_MAX);
      return p.ok ? p.value : bad(name, p.reason);
    },
  };
}

export async function runGrpcProxy(argv: readonly string[]): Promise<void> {
  const values = parseArgs(argv);
  const f = reader(values);
  const prefix = f.string('resolver-prefix');
  const ttl = f.int('resolver-ttl');
  const advertise = f.string('advertise-client-url');
  // etcd's checkArgs, in its order and words
  if (prefix !== '' && ttl < 1) refuse(`invalid resolver-ttl ${ttl}`);
  if (prefix === '' && ttl > 0) refuse(`invalid resolver-prefix ${JSON.stringify(prefix)}`);
  if (prefix !== '' && ttl > 0 && advertise === '') refuse(`invalid advertise-client-url ${JSON.stringify(advertise)}`);

  const debug = f.bool('debug');
  const log = moduleLogger(createLogger({ logLevel: debug ? 'debug' : 'info', logOutputs: ['default'] }), 'etcdmain/grpc_proxy.ts');
  const config = {
    endpoints: await endpointsOf(f, log),
    listenAddr: f.string('listen-addr'),
    advertiseClientUrl: advertise,
    resolverPrefix: prefix,
    resolverTtl: ttl,
    namespace: f.string('namespace'),
    upstreamTls: { cert: f.string('cert'), key: f.string('key'), cacert: f.string('cacert'), insecureSkipTlsVerify: f.bool('insecure-skip-tls-verify') },
    serveTls: {
      certFile: f.string('cert-file'),
      keyFile: f.string('key-file'),
      trustedCaFile: f.string('trusted-ca-file'),
      autoTls: f.bool('auto-tls'),
      cipherSuites: f.strings('listen-cipher-suites'),
      crlFile: f.string('client-crl-file'),
    },
    dataDir: f.string('data-dir'),
    metricsAddr: f.string('metrics-addr'),
    // clientv3 takes 0 for "the default"
    maxSendBytes: f.int('max-send-bytes') > 0 ? f.int('max-send-bytes') : Number(FLAGS['max-send-bytes']!.def),
    maxRecvBytes: f.int('max-recv-bytes') > 0 ? f.int('max-recv-bytes') : Number(FLAGS['max-recv-bytes']!.def),
    maxConcurrentStreams: f.uint32('max-concurrent-streams'),
    enablePprof: f.bool('enable-pprof'),
  };
  for (const [name, why] of Object.entries(NOT_IMPLEMENTED)) {
    const set = values.has(name) && values.get(name) !== FLAGS[name]!.def && values.get(name) !== '';
    if (set) log.warn(`--${name} is accepted for compatibility but not implemented by etcd-ts (${why}); it has no effect`);
  }

  // Loaded only now: --help and flag errors need none of the proxy.
  const { startGrpcProxy, ProxyStartError } = await import('../src/grpcproxy/index.js');
  let proxy;
  try {
    proxy = await startGrpcProxy(config, log);
  } catch (err) {
    if (err instanceof ProxyStartError) refuse(err.message);
    refuse((err as Error).message);
  }
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => void proxy.close().then(() => process.exit(0)));
  }
}

/**
 * --endpoints, or those the SRV records of --discovery-srv name (etcd's
 * discoverEndpoints): when none of them passes the TLS check, --endpoints after all.
 */
async function endpointsOf(f: ReturnType<typeof reader>, log: Logger): Promise<string[]> {
  const domain = f.string('discovery-srv');
  if (domain === '') return f.strings('endpoints');
  const { srvClientEndpoints } = await import('../src/server/srv-discovery.js');
  try {
    const found = await srvClientEndpoints({ domain, serviceName: f.string('discovery-srv-name'), insecure: f.bool('insecure-discovery'), caFile: f.string('cacert'), log });
    return found.length > 0 ? found.map((e) => e.url) : f.strings('endpoints');
  } catch (err) {
    return refuse((err as Error).message);
  }
}
