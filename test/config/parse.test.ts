// parseCommandLine against etcd 3.4.23's behaviour. Messages quoted in comments as
// "etcd:" were captured by running /usr/bin/etcd 3.4.23 with the same input.

import { describe, expect, it } from 'vitest';
import {
  DEFAULT_QUOTA_BYTES,
  defaultConfig,
  parseCommandLine,
  urlString,
  type EtcdConfig,
  type ParseResult,
} from '../../src/server/config/index.js';

/** Ports away from the defaults so a config never points at a real etcd. */
const LOCAL = ['--listen-client-urls=http://127.0.0.1:23790', '--advertise-client-urls=http://127.0.0.1:23790'];

function config(argv: string[], env: Record<string, string | undefined> = {}): EtcdConfig {
  const r = parseCommandLine(argv, env);
  if (r.kind !== 'config') throw new Error(`expected a config, got exit ${r.code}: ${r.stderr ?? r.stdout}`);
  return r.config;
}

function exit(argv: string[], env: Record<string, string | undefined> = {}): Extract<ParseResult, { kind: 'exit' }> {
  const r = parseCommandLine(argv, env);
  if (r.kind !== 'exit') throw new Error('expected an exit');
  return r;
}

const firstLine = (s: string | undefined) => (s ?? '').split('\n')[0];
const urls = (u: readonly URL[]) => u.map(urlString);

describe('defaults (etcd 3.4.23 --help)', () => {
  const c = config([]);
  it('member settings', () => {
    expect(c.name).toBe('default');
    expect(c.dataDir).toBe('default.etcd');
    expect(c.walDir).toBe('');
    expect(c.snapshotCount).toBe(100000);
    expect(c.heartbeatInterval).toBe(100);
    expect(c.electionTimeout).toBe(1000);
    expect(c.initialElectionTickAdvance).toBe(true);
    expect(urls(c.listenPeerUrls)).toEqual(['http://localhost:2380']);
    expect(urls(c.listenClientUrls)).toEqual(['http://localhost:2379']);
    expect(c.maxSnapshots).toBe(5);
    expect(c.maxWals).toBe(5);
    expect(c.quotaBackendBytes).toBe(2 * 1024 * 1024 * 1024);
    expect(c.backendBatchInterval).toBe(0);
    expect(c.backendBatchLimit).toBe(0);
    expect(c.maxTxnOps).toBe(128);
    expect(c.maxRequestBytes).toBe(1572864);
    expect(c.maxConcurrentStreams).toBe(4294967295);
    expect(c.grpcKeepaliveMinTime).toBe(5000);
    expect(c.grpcKeepaliveInterval).toBe(2 * 3600 * 1000);
    expect(c.grpcKeepaliveTimeout).toBe(20000);
  });
  it('clustering settings', () => {
    expect(urls(c.initialAdvertisePeerUrls)).toEqual(['http://localhost:2380']);
    expect([...c.initialCluster.keys()]).toEqual(['default']);
    expect(urls(c.initialCluster.get('default')!)).toEqual(['http://localhost:2380']);
    expect(c.initialClusterState).toBe('new');
    expect(c.initialClusterToken).toBe('etcd-cluster');
    expect(urls(c.advertiseClientUrls)).toEqual(['http://localhost:2379']);
    expect(c.discovery).toBe('');
    expect(c.discoveryFallback).toBe('proxy');
    expect(c.discoveryProxy).toBe('');
    expect(c.discoverySrv).toBe('');
    expect(c.discoverySrvName).toBe('');
    expect(c.strictReconfigCheck).toBe(true);
    expect(c.preVote).toBe(false);
    expect(c.autoCompactionRetention).toBe('0');
    expect(c.autoCompactionMode).toBe('periodic');
    expect(c.autoCompaction).toBeNull();
    expect(c.enableV2).toBe(false);
  });
  it('security, auth, monitoring and logging settings', () => {
    for (const k of ['certFile', 'keyFile', 'clientCrlFile', 'clientCertAllowedHostname', 'trustedCaFile', 'peerCertFile', 'peerKeyFile', 'peerTrustedCaFile', 'peerCertAllowedCn', 'peerCertAllowedHostname', 'peerCrlFile'] as const) {
      expect(c[k], k).toBe('');
    }
    for (const k of ['clientCertAuth', 'autoTls', 'peerClientCertAuth', 'peerAutoTls', 'enablePprof'] as const) expect(c[k], k).toBe(false);
    expect(c.cipherSuites).toEqual([]);
    expect(c.cors).toEqual(['*']);
    expect(config(['--cors=https://ui.example:443,http://b.example:80,https://ui.example:443']).cors).toEqual(['http://b.example:80', 'https://ui.example:443']);
    expect(c.hostWhitelist).toEqual(['*']);
    expect(c.authToken).toBe('simple');
    expect(c.bcryptCost).toBe(10);
    expect(c.authTokenTtl).toBe(300);
    expect(c.metrics).toBe('basic');
    expect(c.listenMetricsUrls).toEqual([]);
    expect(c.logger).toBe('capnslog');
    expect(c.logOutputs).toEqual(['default']);
    expect(c.logLevel).toBe('info');
  });
  it('proxy, experimental and unsafe settings', () => {
    expect(c.proxy).toBe('off');
    expect(c.proxyFailureWait).toBe(5000);
    expect(c.proxyRefreshInterval).toBe(30000);
    expect(c.proxyDialTimeout).toBe(1000);
    expect(c.proxyWriteTimeout).toBe(5000);
    expect(c.proxyReadTimeout).toBe(0);
    expect(c.experimentalInitialCorruptCheck).toBe(false);
    expect(c.experimentalCorruptCheckTime).toBe(0);
    expect(c.experimentalEnableV2v3).toBe('');
    expect(c.experimentalBackendBboltFreelistType).toBe('array');
    expect(c.experimentalEnableLeaseCheckpoint).toBe(false);
    expect(c.experimentalEnableLeaseCheckpointPersist).toBe(false);
    expect(c.experimentalCompactionBatchLimit).toBe(1000);
    expect(c.experimentalPeerSkipClientSanVerification).toBe(false);
    expect(c.experimentalWatchProgressNotifyInterval).toBe(600_000);
    expect(c.experimentalWarningApplyDuration).toBe(100);
    expect(c.forceNewCluster).toBe(false);
    expect(c.unsafeNoFsync).toBe(false);
    expect(c.enableGrpcGateway).toBe(true);
    expect(c.debug).toBe(false);
    expect(c.logPackageLevels).toBe('');
  });
  it('is frozen', () => {
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.listenClientUrls)).toBe(true);
    expect(() => (c.initialCluster as Map<string, readonly URL[]>).set('x', [])).toThrow(/read-only/);
  });
});

describe('derived values', () => {
  it('data dir and initial cluster follow --name and --initial-advertise-peer-urls', () => {
    const c = config(['--name', 'infra0', '--initial-advertise-peer-urls', 'http://10.0.1.10:2380']);
    expect(c.dataDir).toBe('infra0.etcd');
    expect([...c.initialCluster.keys()]).toEqual(['infra0']);
    expect(urls(c.initialCluster.get('infra0')!)).toEqual(['http://10.0.1.10:2380']);
  });
  it('an explicit --data-dir and --initial-cluster win', () => {
    const c = config(['--name=a', '--data-dir=/var/lib/etcd', '--initial-cluster=a=http://10.0.0.1:2380,b=http://10.0.0.2:2380']);
    expect(c.dataDir).toBe('/var/lib/etcd');
    expect([...c.initialCluster.keys()]).toEqual(['a', 'b']);
  });
  it('quota: 0 is the 2 GiB default, negative disables it, others are kept', () => {
    expect(config(['--quota-backend-bytes=0']).quotaBackendBytes).toBe(DEFAULT_QUOTA_BYTES);
    expect(config(['--quota-backend-bytes=-1']).quotaBackendBytes).toBe(Number.POSITIVE_INFINITY);
    expect(config(['--quota-backend-bytes=8589934592']).quotaBackendBytes).toBe(8589934592);
  });
  it('auto compaction: hours by default, Go durations, revisions', () => {
    expect(config(['--auto-compaction-retention=1']).autoCompaction).toEqual({ mode: 'periodic', retentionMs: 3_600_000 });
    expect(config(['--auto-compaction-retention=5m']).autoCompaction).toEqual({ mode: 'periodic', retentionMs: 300_000 });
    expect(config(['--auto-compaction-mode=revision', '--auto-compaction-retention=1000']).autoCompaction).toEqual({
      mode: 'revision',
      retentionRevisions: 1000,
    });
    expect(config(['--auto-compaction-retention=0s']).autoCompaction).toBeNull();
  });
  it('--debug means --log-level=debug; --log-output is the deprecated --log-outputs', () => {
    expect(config(['--debug']).logLevel).toBe('debug');
    expect(config(['--log-output=stdout']).logOutputs).toEqual(['stdout']);
    expect(config(['--log-outputs=stderr,/tmp/x.log']).logOutputs).toEqual(['/tmp/x.log', 'stderr']);
  });
  it('durations become milliseconds', () => {
    const c = config(['--experimental-watch-progress-notify-interval=5s', '--grpc-keepalive-interval=0', '--backend-batch-interval=10ms']);
    expect(c.experimentalWatchProgressNotifyInterval).toBe(5000);
    expect(c.grpcKeepaliveInterval).toBe(0);
    expect(c.backendBatchInterval).toBe(10);
  });
  it('URL lists are sorted like etcd', () => {
    const c = config(['--listen-client-urls=http://127.0.0.1:4001,http://127.0.0.1:2379', '--advertise-client-urls=http://127.0.0.1:2379']);
    expect(urls(c.listenClientUrls)).toEqual(['http://127.0.0.1:2379', 'http://127.0.0.1:4001']);
  });
});

describe('command-line syntax (Go flag package)', () => {
  it('takes -flag, --flag, --flag=value and --flag value', () => {
    expect(config(['--name', 'a']).name).toBe('a');
    expect(config(['--name=a']).name).toBe('a');
    expect(config(['-name', 'a']).name).toBe('a');
    expect(config(['-name=a']).name).toBe('a');
    expect(config(['--snapshot-count', '0x10']).snapshotCount).toBe(16);
  });
  it('the last occurrence of a flag wins', () => {
    expect(config(['--name=a', '--name=b']).name).toBe('b');
  });
  it('bool flags take --flag or --flag=value only', () => {
    expect(config(['--enable-v2']).enableV2).toBe(true);
    expect(config(['--strict-reconfig-check=false']).strictReconfigCheck).toBe(false);
    expect(config(['--pre-vote=1']).preVote).toBe(true);
    // etcd: error verifying flags, 'true' is not a valid flag. See 'etcd --help'.
    const r = exit(['--enable-v2', 'true']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("error verifying flags, 'true' is not a valid flag. See 'etcd-ts --help'.\n");
  });
  it('a value may start with a dash', () => {
    expect(config(['--name', '--x']).name).toBe('--x');
  });
  it('-- ends the flags; anything after is refused like etcd', () => {
    expect(exit(['--', '--name=a']).stderr).toMatch(/^error verifying flags, '--name=a' is not a valid flag/);
  });
  it('unknown flags exit 2 with the usage', () => {
    // etcd: flag provided but not defined: -bogus
    const r = exit(['--bogus']);
    expect(r.code).toBe(2);
    expect(firstLine(r.stderr)).toBe('flag provided but not defined: -bogus');
    expect(r.stderr).toContain('Usage:');
    // flags that only exist in etcd 3.5+
    expect(firstLine(exit(['--socket-reuse-port']).stderr)).toBe('flag provided but not defined: -socket-reuse-port');
  });
  it('malformed values exit 2 with etcd wording', () => {
    const cases: [string[], string][] = [
      [['--heartbeat-interval=abc'], 'invalid value "abc" for flag -heartbeat-interval: parse error'],
      [['--heartbeat-interval=1.5'], 'invalid value "1.5" for flag -heartbeat-interval: parse error'],
      [['--snapshot-count=-5'], 'invalid value "-5" for flag -snapshot-count: parse error'],
      [['--heartbeat-interval'], 'flag needs an argument: -heartbeat-interval'],
      [['--name'], 'flag needs an argument: -name'],
      [['--enable-v2=maybe'], 'invalid boolean value "maybe" for -enable-v2: parse error'],
      [['--listen-client-urls=foo'], 'invalid value "foo" for flag -listen-client-urls: URL scheme must be http, https, unix, or unixs: foo'],
      [['--listen-client-urls=http://127.0.0.1'], 'invalid value "http://127.0.0.1" for flag -listen-client-urls: URL address does not have the form "host:port": http://127.0.0.1'],
      [['--listen-client-urls=http://127.0.0.1:1/x'], 'invalid value "http://127.0.0.1:1/x" for flag -listen-client-urls: URL must not contain a path: http://127.0.0.1:1/x'],
      [['--grpc-keepalive-min-time=5'], 'invalid value "5" for flag -grpc-keepalive-min-time: parse error'],
      // --cors takes "*" alone, or URLs with a port
      [['--cors=https://ui.example'], 'invalid value "https://ui.example" for flag -cors: URL address does not have the form "host:port": https://ui.example'],
      [['--cors=*,https://ui.example:443'], 'invalid value "*,https://ui.example:443" for flag -cors: URL scheme must be http, https, unix, or unixs: *'],
      [['---name=a'], 'bad flag syntax: ---name=a'],
      // etcd accepts the flag and then fails: --advertise-client-urls "http://:1" must be "host:port" (unexpected empty host (http://:1))
      [['--advertise-client-urls=http://:1'], 'invalid value "http://:1" for flag -advertise-client-urls: unexpected empty host (http://:1)'],
    ];
    for (const [argv, msg] of cases) {
      const r = exit(argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(firstLine(r.stderr)).toBe(msg);
    }
    // etcd: invalid value "bad" for flag -initial-cluster-state: invalid value (we add the choices)
    expect(firstLine(exit(['--initial-cluster-state=bad']).stderr)).toBe(
      'invalid value "bad" for flag -initial-cluster-state: invalid value (valid values are "new", "existing")',
    );
    expect(exit(['--log-level=bogus']).code).toBe(2);
  });
  it('--help and -h print the flags on stdout and exit 0', () => {
    for (const h of ['--help', '-h', '-help']) {
      const r = exit([h]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("--initial-cluster 'default=http://localhost:2380'");
    }
  });
  it('--version prints etcd-style lines and exits 0', () => {
    const r = exit(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^etcd Version: 3\.4\.23\netcd-ts Version: \S+ /);
  });
});

describe('validation (etcd embed.Config.Validate and etcdmain)', () => {
  const cases: [string[], string][] = [
    // etcd: error verifying flags, --election-timeout[200ms] should be at least as 5 times as --heartbeat-interval[100ms]. See 'etcd --help'.
    [['--heartbeat-interval=100', '--election-timeout=200'], '--election-timeout[200ms] should be at least as 5 times as --heartbeat-interval[100ms]'],
    [['--heartbeat-interval=0'], '--heartbeat-interval must be >0 (set to 0ms)'],
    [['--election-timeout=60000'], '--election-timeout[60000ms] is too long, and should be set less than 50000ms'],
    [['--listen-client-urls=http://127.0.0.1:23790'], '--advertise-client-urls is required when --listen-client-urls is set explicitly'],
    [['--logger=bogus'], 'unknown logger option "bogus"'],
    [['--auto-compaction-mode=bogus'], 'unknown auto-compaction-mode "bogus"'],
    [['--auto-compaction-retention=abc'], 'error parsing CompactionRetention: time: invalid duration "abc"'],
    [['--log-outputs=default,stdout'], 'multi logoutput for "default" is not supported yet'],
    [['--listen-client-urls=http://myhost:1', '--advertise-client-urls=http://a:1'], 'expected IP in URL for binding (http://myhost:1)'],
    [['--initial-cluster=foo'], 'error setting up initial cluster: URL scheme must be http, https, unix, or unixs: '],
    [['--initial-cluster=default=foo'], 'error setting up initial cluster: URL scheme must be http, https, unix, or unixs: foo'],
    [['--discovery=http://x:1', '--initial-cluster=default=http://localhost:2380'], 'multiple discovery or bootstrap flags are set'],
    [['--discovery=http://x:1', '--initial-cluster-state=existing'], 'discovery URL should not be set when joining existing initial cluster'],
    [['--discovery-srv=example.com', '--initial-cluster=default=http://localhost:2380'], 'multiple discovery or bootstrap flags are set'],
    [['--cert-file=/x.pem'], 'KeyFile and CertFile must both be present'],
    [[...LOCAL.map((f) => f.replace('http:', 'https:'))], 'TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:23790 with HTTPS scheme'],
    [['--listen-peer-urls=https://127.0.0.1:23800'], 'cannot listen on TLS for 127.0.0.1:23800: KeyFile and CertFile are not presented'],
    [['--bcrypt-cost=3'], '--bcrypt-cost must be between 4 and 31'],
    // etcd: C | etcdmain: auth: invalid auth options
    [['--auth-token=bogus'], 'auth: invalid auth options'],
    // etcd: E | auth: problem loading JWT options: open a.pem: no such file or directory
    [['--auth-token=jwt,pub-key=a.pem,priv-key=a.key,sign-method=RS256'], "auth: invalid auth options (ENOENT: no such file or directory, open 'a.pem')"],
  ];
  for (const [argv, msg] of cases) {
    it(argv.join(' '), () => {
      const r = exit(argv);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^error verifying flags, /);
      expect(r.stderr).toContain(msg);
      expect(r.stderr).toMatch(/See 'etcd-ts --help'\.\n$/);
    });
  }
  it('TLS settings that are complete are accepted', () => {
    const c = config([
      '--listen-client-urls=https://127.0.0.1:23790',
      '--advertise-client-urls=https://127.0.0.1:23790',
      '--cert-file=/c.pem',
      '--key-file=/k.pem',
      '--client-cert-auth',
      '--trusted-ca-file=/ca.pem',
      '--listen-peer-urls=https://127.0.0.1:23800',
      '--peer-auto-tls',
    ]);
    expect(c.clientCertAuth).toBe(true);
    expect(c.peerAutoTls).toBe(true);
  });
});

describe('ETCD_* environment variables', () => {
  it('set flags that are not on the command line, and are logged as used', () => {
    const r = parseCommandLine(['--name=a'], { ETCD_SNAPSHOT_COUNT: '5000', ETCD_INITIAL_CLUSTER_TOKEN: 'tok', ETCD_ENABLE_V2: 'true', PATH: '/bin' });
    if (r.kind !== 'config') throw new Error('expected config');
    expect(r.config.snapshotCount).toBe(5000);
    expect(r.config.initialClusterToken).toBe('tok');
    expect(r.config.enableV2).toBe(true);
    expect(r.notices).toContain('recognized and used environment variable ETCD_SNAPSHOT_COUNT=5000');
  });
  it('a member configured through variables only', () => {
    const c = config([], {
      ETCD_NAME: 'infra1',
      ETCD_DATA_DIR: '/var/lib/etcd',
      ETCD_LISTEN_CLIENT_URLS: 'http://127.0.0.1:23791',
      ETCD_ADVERTISE_CLIENT_URLS: 'http://127.0.0.1:23791',
      ETCD_LISTEN_PEER_URLS: 'http://127.0.0.1:23801',
      ETCD_INITIAL_ADVERTISE_PEER_URLS: 'http://127.0.0.1:23801',
      ETCD_INITIAL_CLUSTER: 'infra0=http://127.0.0.1:23800,infra1=http://127.0.0.1:23801',
      ETCD_INITIAL_CLUSTER_STATE: 'existing',
    });
    expect(c.name).toBe('infra1');
    expect(c.dataDir).toBe('/var/lib/etcd');
    expect(urls(c.listenClientUrls)).toEqual(['http://127.0.0.1:23791']);
    expect([...c.initialCluster.keys()]).toEqual(['infra0', 'infra1']);
    expect(c.initialClusterState).toBe('existing');
  });
  it('a variable that duplicates a given flag is fatal, with etcd wording', () => {
    // etcd: conflicting environment variable "ETCD_NAME" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)
    const r = exit(['--name=foo'], { ETCD_NAME: 'foo' });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'conflicting environment variable "ETCD_NAME" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)\n',
    );
    // even an empty one, as in etcd
    expect(exit(['--name=foo'], { ETCD_NAME: '' }).code).toBe(1);
  });
  it('unknown ETCD_* variables only warn', () => {
    const r = parseCommandLine([], { ETCD_BOGUS_THING: '1', ETCDCTL_API: '3' });
    if (r.kind !== 'config') throw new Error('expected config');
    // etcd: unrecognized environment variable ETCD_BOGUS_THING=1
    expect(r.warnings).toEqual(['unrecognized environment variable ETCD_BOGUS_THING=1']);
  });
  it('a malformed variable is refused', () => {
    // etcd: error verifying flags, invalid value "abc" for ETCD_HEARTBEAT_INTERVAL: parse error. See 'etcd --help'.
    const r = exit([], { ETCD_HEARTBEAT_INTERVAL: 'abc' });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`error verifying flags, invalid value "abc" for ETCD_HEARTBEAT_INTERVAL: parse error. See 'etcd-ts --help'.\n`);
  });
  it('empty variables are ignored', () => {
    expect(config([], { ETCD_NAME: '' }).name).toBe('default');
  });
});

describe('accepted but not implemented', () => {
  it('warns for each one set', () => {
    // --discovery-fallback=exit is what a full discovery cluster makes etcd-ts do either way (discovery.ts)
    const r = parseCommandLine(['--proxy=on', '--enable-v2', '--enable-pprof', '--discovery-fallback=exit'], {});
    if (r.kind !== 'config') throw new Error('expected config');
    expect(r.warnings).toEqual(['--proxy is accepted for compatibility but not implemented by etcd-ts; it has no effect']);
  });
  it('--log-package-levels is read with the capnslog logger (the default), and said to do nothing with zap', () => {
    const capnslog = parseCommandLine(['--log-package-levels=etcdserver=DEBUG'], {});
    expect(capnslog.kind === 'config' && capnslog.warnings).toEqual([]);
    const zap = parseCommandLine(['--logger=zap', '--log-package-levels=etcdserver=DEBUG'], {});
    expect(zap.kind === 'config' && zap.warnings).toEqual(['--log-package-levels is read only with --logger=capnslog, as etcd reads it; it has no effect with --logger=zap']);
  });
  it('--unsafe-no-fsync is honoured, with a warning that says what it risks', () => {
    const r = parseCommandLine(['--unsafe-no-fsync'], {});
    if (r.kind !== 'config') throw new Error('expected config');
    expect(r.config.unsafeNoFsync).toBe(true);
    expect(r.warnings).toEqual(['--unsafe-no-fsync: the WAL is never fsynced; a power cut or a kernel crash may lose acknowledged writes']);
  });
  it('the corruption check flags and the other settings etcd-ts acts on get no warning', () => {
    const r = parseCommandLine(['--experimental-initial-corrupt-check', '--experimental-corrupt-check-time=1m', '--initial-election-tick-advance=false',
      '--grpc-keepalive-interval=1m', '--grpc-keepalive-timeout=1s', '--host-whitelist=a.example', '--cors=https://ui.example:443',
      '--experimental-compaction-batch-limit=10', '--experimental-peer-skip-client-san-verification', '--experimental-warning-apply-duration=1s'], {});
    expect(r.kind === 'config' && r.warnings).toEqual([]);
  });
  it('--enable-v2 is implemented: no warning', () => {
    const r = parseCommandLine(['--enable-v2'], {});
    expect(r.kind === 'config' && r.warnings).toEqual([]);
  });
  it('stays quiet for the defaults', () => {
    const r = parseCommandLine([], {});
    expect(r.kind === 'config' && r.warnings).toEqual([]);
  });
});

describe('lease checkpoints (etcd 3.4.23)', () => {
  it('are off by default; the flag turns them on, with etcd\'s warning while they are not persisted', () => {
    const r = parseCommandLine(['--experimental-enable-lease-checkpoint'], {});
    if (r.kind !== 'config') throw new Error('expected config');
    expect(r.config.experimentalEnableLeaseCheckpoint).toBe(true);
    // etcd: {"level":"warn",...,"msg":"Detected that checkpointing is enabled without persistence. Consider enabling experimental-enable-lease-checkpoint-persist"}
    expect(r.warnings).toEqual(['Detected that checkpointing is enabled without persistence. Consider enabling experimental-enable-lease-checkpoint-persist']);
    const both = parseCommandLine(['--experimental-enable-lease-checkpoint', '--experimental-enable-lease-checkpoint-persist'], {});
    expect(both.kind === 'config' && both.warnings).toEqual([]);
  });
  it('persisting without checkpoints is refused as etcd refuses it', () => {
    const r = exit(['--experimental-enable-lease-checkpoint-persist']);
    expect(r.code).toBe(1);
    // etcd: error verifying flags, setting experimental-enable-lease-checkpoint-persist requires experimental-enable-lease-checkpoint. See 'etcd --help'.
    expect(r.stderr).toBe(`error verifying flags, setting experimental-enable-lease-checkpoint-persist requires experimental-enable-lease-checkpoint. See 'etcd-ts --help'.\n`);
  });
});

describe('defaultConfig (library use)', () => {
  it('is the command-line default', () => {
    const d = defaultConfig();
    const c = config([]);
    expect({ ...d, initialCluster: [...d.initialCluster] }).toEqual({ ...c, initialCluster: [...c.initialCluster] });
  });
  it('derives data dir and initial cluster from overrides', () => {
    const d = defaultConfig({ name: 'n1', initialAdvertisePeerUrls: [new URL('http://127.0.0.1:23800')] });
    expect(d.dataDir).toBe('n1.etcd');
    expect(urls(d.initialCluster.get('n1')!)).toEqual(['http://127.0.0.1:23800']);
    expect(defaultConfig({ listenClientUrls: [] }).listenClientUrls).toEqual([]);
  });
  it('throws a ConfigError for invalid overrides', () => {
    expect(() => defaultConfig({ heartbeatInterval: 500 })).toThrow(/should be at least as 5 times/);
  });
});
