// `--config-file`: etcd's YAML, whose keys are the flag names except TLS, which
// nests under `client-transport-security:` and `peer-transport-security:`.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import { FLAGS_BY_NAME, parseFlagValue, type FlagSpec, type FlagValue } from './flags.js';
import { buildConfig } from './build.js';
import { ConfigError } from './errors.js';
import type { EtcdConfig } from './types.js';

/**
 * yaml's parser, required when a config file is read: most members start from flags
 * alone, and loading yaml costs them ~70 ms of CPU. Synchronous (yaml ships CommonJS for
 * Node) because the command line is parsed synchronously.
 */
function parseYaml(text: string): unknown {
  const yaml = createRequire(import.meta.url)('yaml') as typeof Yaml;
  return yaml.parse(text);
}

/** YAML key inside a *-transport-security block → the flag it stands for. */
const CLIENT_SECURITY: Readonly<Record<string, string>> = {
  'cert-file': 'cert-file',
  'key-file': 'key-file',
  'client-cert-auth': 'client-cert-auth',
  'trusted-ca-file': 'trusted-ca-file',
  'auto-tls': 'auto-tls',
  'crl-file': 'client-crl-file',
  'allowed-hostname': 'client-cert-allowed-hostname',
};
const PEER_SECURITY: Readonly<Record<string, string>> = {
  'cert-file': 'peer-cert-file',
  'key-file': 'peer-key-file',
  'client-cert-auth': 'peer-client-cert-auth',
  'trusted-ca-file': 'peer-trusted-ca-file',
  'auto-tls': 'peer-auto-tls',
  'crl-file': 'peer-crl-file',
  'allowed-cn': 'peer-cert-allowed-cn',
  'allowed-hostname': 'peer-cert-allowed-hostname',
};

export interface LoadedConfigFile {
  readonly config: EtcdConfig;
  readonly warnings: readonly string[];
}

/** Read, parse and validate a config file; every problem is a ConfigError naming the file. */
export function loadConfigFile(path: string): LoadedConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${path}: ${(e as Error).message}`);
  }
  return configFromYaml(text, path);
}

/** The YAML text of a config file (`origin` names it in messages). */
export function configFromYaml(text: string, origin: string): LoadedConfigFile {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ConfigError(`cannot parse config file ${origin}: ${(e as Error).message}`);
  }
  if (doc === null || doc === undefined) doc = {};
  if (!isRecord(doc)) throw new ConfigError(`config file ${origin} must hold a YAML mapping of etcd's configuration keys`);

  const values = new Map<string, FlagValue>();
  const warnings: string[] = [];
  for (const [key, raw] of Object.entries(doc)) {
    if (key === 'client-transport-security' || key === 'peer-transport-security') {
      if (raw === null) continue;
      if (!isRecord(raw)) throw new ConfigError(`"${key}" in ${origin} must be a mapping (cert-file, key-file, client-cert-auth, trusted-ca-file, auto-tls)`);
      const table = key === 'client-transport-security' ? CLIENT_SECURITY : PEER_SECURITY;
      for (const [sub, subRaw] of Object.entries(raw)) {
        const flag = table[sub];
        if (flag === undefined) {
          warnings.push(`unrecognized key "${key}.${sub}" in config file ${origin}; ignoring it`);
          continue;
        }
        setFromYaml(values, FLAGS_BY_NAME.get(flag)!, `${key}.${sub}`, subRaw, origin);
      }
      continue;
    }
    const spec = FLAGS_BY_NAME.get(key);
    if (spec === undefined || spec.cliOnly) {
      warnings.push(`unrecognized key "${key}" in config file ${origin}; ignoring it`);
      continue;
    }
    setFromYaml(values, spec, key, raw, origin);
  }
  const built = buildConfig(values, 'file');
  if (!built.ok) throw new ConfigError(`${built.error} (config file ${origin})`);
  return { config: built.config, warnings };
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** One YAML value into flag form; YAML's own types are taken as they are, strings as flag syntax. */
function setFromYaml(values: Map<string, FlagValue>, spec: FlagSpec, key: string, raw: unknown, origin: string): void {
  if (raw === null || raw === undefined) return; // `key:` with nothing leaves the default, as in etcd
  const bad = (why: string) => new ConfigError(`invalid value ${JSON.stringify(raw)} for "${key}" in config file ${origin}: ${why}`);
  let text: string;
  if (typeof raw === 'boolean') {
    if (spec.kind !== 'bool') throw bad(`expected ${describeKind(spec)}`);
    values.set(spec.name, raw);
    return;
  } else if (typeof raw === 'number') {
    if (spec.kind === 'duration') {
      // etcd unmarshals durations as Go time.Duration: integer nanoseconds.
      if (!Number.isInteger(raw)) throw bad('a number here is nanoseconds and must be an integer; or write a duration such as "5s"');
      values.set(spec.name, raw / 1e6);
      return;
    }
    if (spec.kind === 'bool' || spec.kind === 'urls' || spec.kind === 'list' || spec.kind === 'origins') throw bad(`expected ${describeKind(spec)}`);
    text = String(raw);
  } else if (typeof raw === 'string') {
    text = raw;
  } else if (Array.isArray(raw) && (spec.kind === 'urls' || spec.kind === 'list' || spec.kind === 'origins') && raw.every((x) => typeof x === 'string')) {
    text = raw.join(',');
  } else {
    throw bad(`expected ${describeKind(spec)}`);
  }
  const v = parseFlagValue(spec, text);
  if (!v.ok) throw bad(v.reason);
  values.set(spec.name, v.value);
}

function describeKind(spec: FlagSpec): string {
  switch (spec.kind) {
    case 'bool':
      return 'true or false';
    case 'uint':
    case 'uint32':
    case 'int':
      return 'an integer';
    case 'duration':
      return 'a duration such as "5s" or integer nanoseconds';
    case 'urls':
      return 'a comma-separated string (or list) of URLs';
    case 'list':
      return 'a comma-separated string or a list of strings';
    case 'origins':
      return '"*", or a comma-separated string (or list) of URLs';
    case 'string':
    case 'choice':
      return 'a string';
  }
}

/** The config a file describes (warnings about unknown keys are dropped; see loadConfigFile). */
export function configFromFile(path: string): EtcdConfig {
  return loadConfigFile(path).config;
}
