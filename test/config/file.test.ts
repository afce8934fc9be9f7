import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, configFromFile, loadConfigFile, parseCommandLine, urlString } from '../../src/server/config/index.js';

const dir = mkdtempSync(join(tmpdir(), 'config-eng-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(text: string): string {
  const p = join(dir, `etcd-${n++}.conf.yml`);
  writeFileSync(p, text);
  return p;
}

const urls = (u: readonly URL[]) => u.map(urlString);

// The shape of etcd's etcd.conf.yml.sample (3.4), with TLS nested per side.
const SAMPLE = `
name: 'infra0'
data-dir: /var/lib/etcd
wal-dir:
snapshot-count: 10000
heartbeat-interval: 100
election-timeout: 1000
quota-backend-bytes: 0
listen-peer-urls: https://127.0.0.1:23800
listen-client-urls: https://127.0.0.1:23790,http://127.0.0.1:23791
max-snapshots: 5
max-wals: 5
cors:
initial-advertise-peer-urls: https://127.0.0.1:23800
advertise-client-urls: https://127.0.0.1:23790
discovery:
discovery-fallback: 'proxy'
initial-cluster: infra0=https://127.0.0.1:23800,infra1=https://127.0.0.1:23801
initial-cluster-token: 'etcd-cluster-1'
initial-cluster-state: 'new'
strict-reconfig-check: false
enable-v2: false
enable-pprof: false
proxy: 'off'
client-transport-security:
  cert-file: /etc/etcd/server.pem
  key-file: /etc/etcd/server-key.pem
  client-cert-auth: true
  trusted-ca-file: /etc/etcd/ca.pem
  auto-tls: false
peer-transport-security:
  cert-file: /etc/etcd/peer.pem
  key-file: /etc/etcd/peer-key.pem
  client-cert-auth: true
  trusted-ca-file: /etc/etcd/ca.pem
  auto-tls: false
debug: false
log-outputs: [stderr]
logger: zap
auto-compaction-mode: revision
auto-compaction-retention: "1000"
experimental-watch-progress-notify-interval: 5000000000
`;

describe('configFromFile', () => {
  it("reads etcd's YAML keys, with TLS nested per side", () => {
    const c = configFromFile(file(SAMPLE));
    expect(c.name).toBe('infra0');
    expect(c.dataDir).toBe('/var/lib/etcd');
    expect(c.walDir).toBe('');
    expect(c.snapshotCount).toBe(10000);
    expect(urls(c.listenClientUrls)).toEqual(['http://127.0.0.1:23791', 'https://127.0.0.1:23790']);
    expect([...c.initialCluster.keys()]).toEqual(['infra0', 'infra1']);
    expect(c.initialClusterToken).toBe('etcd-cluster-1');
    expect(c.strictReconfigCheck).toBe(false);
    expect(c.certFile).toBe('/etc/etcd/server.pem');
    expect(c.keyFile).toBe('/etc/etcd/server-key.pem');
    expect(c.clientCertAuth).toBe(true);
    expect(c.trustedCaFile).toBe('/etc/etcd/ca.pem');
    expect(c.peerCertFile).toBe('/etc/etcd/peer.pem');
    expect(c.peerKeyFile).toBe('/etc/etcd/peer-key.pem');
    expect(c.peerClientCertAuth).toBe(true);
    expect(c.peerTrustedCaFile).toBe('/etc/etcd/ca.pem');
    expect(c.logOutputs).toEqual(['stderr']);
    expect(c.logger).toBe('zap');
    expect(c.autoCompaction).toEqual({ mode: 'revision', retentionRevisions: 1000 });
    // Go durations in YAML are integer nanoseconds
    expect(c.experimentalWatchProgressNotifyInterval).toBe(5000);
    // untouched keys keep etcd's defaults
    expect(c.maxTxnOps).toBe(128);
    expect(c.cors).toEqual(['*']);
  });
  it('an empty file is all defaults', () => {
    const c = configFromFile(file(''));
    expect(c.name).toBe('default');
    expect(c.dataDir).toBe('default.etcd');
  });
  it('takes duration strings and URL lists too', () => {
    const c = configFromFile(file('grpc-keepalive-min-time: 10s\nlisten-metrics-urls: [http://127.0.0.1:23810]\n'));
    expect(c.grpcKeepaliveMinTime).toBe(10_000);
    expect(urls(c.listenMetricsUrls)).toEqual(['http://127.0.0.1:23810']);
  });
  it('warns about keys it does not know', () => {
    const p = file('name: a\nbogus-key: 1\nclient-transport-security:\n  nope: 1\n');
    expect(loadConfigFile(p).warnings).toEqual([
      `unrecognized key "bogus-key" in config file ${p}; ignoring it`,
      `unrecognized key "client-transport-security.nope" in config file ${p}; ignoring it`,
    ]);
  });
  it('refuses bad values, bad YAML, missing files and invalid configurations with a ConfigError', () => {
    const cases: [string, RegExp][] = [
      ['heartbeat-interval: abc', /invalid value "abc" for "heartbeat-interval" in config file .*: parse error/],
      ['enable-v2: 3', /invalid value 3 for "enable-v2" .*expected true or false/],
      ['listen-client-urls: foo', /URL scheme must be http, https, unix, or unixs: foo/],
      ['name: [a', /cannot parse config file/],
      ['- a\n- b', /must hold a YAML mapping/],
      ['heartbeat-interval: 500', /should be at least as 5 times as --heartbeat-interval\[500ms\]/],
    ];
    for (const [text, re] of cases) {
      expect(() => configFromFile(file(text)), text).toThrow(ConfigError);
      expect(() => configFromFile(file(text)), text).toThrow(re);
    }
    expect(() => configFromFile(join(dir, 'missing.yml'))).toThrow(/cannot read config file/);
  });
});

describe('--config-file on the command line', () => {
  it('ignores other flags and ETCD_* variables, as etcd does', () => {
    const p = file('name: fromfile\n');
    const r = parseCommandLine(['--config-file', p, '--name=fromflag'], { ETCD_SNAPSHOT_COUNT: '7', ETCD_BOGUS: 'x' });
    if (r.kind !== 'config') throw new Error(`expected config: ${JSON.stringify(r)}`);
    expect(r.config.name).toBe('fromfile');
    expect(r.config.snapshotCount).toBe(100000);
    expect(r.notices[0]).toMatch(/other configuration command line flags and environment variables will be ignored/);
  });
  it('ETCD_CONFIG_FILE works the same way', () => {
    const p = file('name: viaenv\n');
    const r = parseCommandLine(['--name=x'], { ETCD_CONFIG_FILE: p, ETCD_NAME: 'y' });
    expect(r.kind === 'config' && r.config.name).toBe('viaenv');
  });
  it('the flag wins over ETCD_CONFIG_FILE', () => {
    const a = file('name: a\n');
    const b = file('name: b\n');
    const r = parseCommandLine([`--config-file=${a}`], { ETCD_CONFIG_FILE: b });
    expect(r.kind === 'config' && r.config.name).toBe('a');
  });
  it('a bad file ends the start with exit code 1', () => {
    const r = parseCommandLine(['--config-file', join(dir, 'missing.yml')], {});
    expect(r.kind === 'exit' && r.code).toBe(1);
    expect(r.kind === 'exit' && r.stderr).toMatch(/^error verifying flags, cannot read config file/);
  });
});
