// The flag table against `etcd --help` of etcd 3.4.23 (captured into fixtures/), so no
// flag a deployment guide uses is missing and every default is etcd's.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FLAGS, flagToEnv, flagToKey, parseCommandLine } from '../../src/server/config/index.js';

const etcdHelp = readFileSync(new URL('./fixtures/etcd-3.4.23-help.txt', import.meta.url), 'utf8');
/** `  --name 'default'` or `  --bcrypt-cost 10` → [name, default] */
const etcdFlags = new Map(
  [...etcdHelp.matchAll(/^ {2}--([a-z0-9-]+) (?:'([^']*)'|(\S+))$/gm)].map((m) => [m[1]!, m[2] ?? m[3]!] as const),
);

describe('flag table', () => {
  it('has every flag etcd 3.4.23 lists, with the same shown default', () => {
    expect(etcdFlags.size).toBe(80);
    const ours = new Map(FLAGS.filter((f) => !f.hidden).map((f) => [f.name, f.shownDefault ?? f.default]));
    for (const [name, def] of etcdFlags) {
      expect(ours.has(name), `--${name}`).toBe(true);
      expect(ours.get(name), `--${name}`).toBe(def);
    }
    expect([...ours.keys()].filter((n) => !etcdFlags.has(n))).toEqual([]);
  });
  it('--help lists them in etcd\'s order', () => {
    const r = parseCommandLine(['--help'], {});
    if (r.kind !== 'exit') throw new Error('expected exit');
    const shown = [...(r.stdout ?? '').matchAll(/^ {2}--([a-z0-9-]+) /gm)].map((m) => m[1]);
    expect(shown).toEqual([...etcdFlags.keys()]);
  });
  it('also accepts the flags 3.4.23 takes without listing them', () => {
    // (checkpoint-persist is valid only beside the checkpoints it persists, as in etcd)
    for (const f of ['--enable-grpc-gateway=false', '--unsafe-no-fsync', '--experimental-enable-lease-checkpoint-persist', '--log-output=stderr']) {
      const argv = f === '--experimental-enable-lease-checkpoint-persist' ? ['--experimental-enable-lease-checkpoint', f] : [f];
      expect(parseCommandLine(argv, {}).kind, f).toBe('config');
    }
  });
  it("takes etcd 3.5.13's --experimental-snapshot-catchup-entries, unlisted, with 3.4's built-in 5000 as its default", () => {
    const entries = (argv: string[], env: Record<string, string> = {}): number => {
      const r = parseCommandLine(argv, env);
      if (r.kind !== 'config') throw new Error(`expected config for ${argv.join(' ')}`);
      return r.config.experimentalSnapshotCatchupEntries;
    };
    expect(entries([])).toBe(5000);
    expect(entries(['--experimental-snapshot-catchup-entries', '100'])).toBe(100);
    expect(entries([], { ETCD_EXPERIMENTAL_SNAPSHOT_CATCHUP_ENTRIES: '250' })).toBe(250);
    const bad = parseCommandLine(['--experimental-snapshot-catchup-entries', '-1'], {});
    expect(bad.kind).toBe('exit');
    const help = parseCommandLine(['--help'], {});
    if (help.kind !== 'exit') throw new Error('expected exit');
    expect(help.stdout).not.toContain('snapshot-catchup-entries');
  });
  it('names: ETCD_<UPPER_SNAKE> variables and camelCase config fields', () => {
    expect(flagToEnv('initial-cluster-token')).toBe('ETCD_INITIAL_CLUSTER_TOKEN');
    expect(flagToKey('experimental-enable-v2v3')).toBe('experimentalEnableV2v3');
    const r = parseCommandLine([], {});
    if (r.kind !== 'config') throw new Error('expected config');
    const keys = new Set(Object.keys(r.config));
    for (const f of FLAGS) {
      if (f.cliOnly || f.name === 'log-output') continue;
      expect(keys.has(flagToKey(f.name)), f.name).toBe(true);
    }
  });
});
