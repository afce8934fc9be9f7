// The configuration entry points: the command line (with ETCD_* variables and
// --config-file) for bin/etcd-ts, and defaultConfig for programs embedding etcd-ts.

import { readFileSync } from 'node:fs';
import { parseArgv } from './argv.js';
import { buildConfig } from './build.js';
import { applyEnv } from './env.js';
import { ConfigError } from './errors.js';
import { loadConfigFile } from './file.js';
import { USAGE_HEADER, helpText, versionText } from './help.js';
import type { EtcdConfig } from './types.js';
import { compatibilityWarnings } from './warnings.js';

export type ParseResult =
  | {
      readonly kind: 'config';
      readonly config: EtcdConfig;
      /** to log at warn level before starting (unknown ETCD_* variables, ignored flags ...) */
      readonly warnings: readonly string[];
      /** to log at info level (ETCD_* variables used, config file loaded) */
      readonly notices: readonly string[];
    }
  /** help, version or an error: print, then exit with `code` */
  | { readonly kind: 'exit'; readonly code: number; readonly stdout?: string; readonly stderr?: string };

/** etcd's exit code for command-line syntax errors (Go's flag package). */
export const EXIT_USAGE = 2;
/** etcd's exit code for flags that parse but do not make a valid configuration. */
export const EXIT_INVALID = 1;

function invalid(message: string): ParseResult {
  return { kind: 'exit', code: EXIT_INVALID, stderr: `error verifying flags, ${message}. See 'etcd-ts --help'.\n` };
}

/**
 * Read the configuration as `etcd` 3.4 reads it: flags, then ETCD_* variables for flags
 * not given (a variable that duplicates a given flag is an error), or, with
 * --config-file / ETCD_CONFIG_FILE, that file alone.
 */
export function parseCommandLine(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ParseResult {
  const args = parseArgv(argv);
  if (args.kind === 'help') return { kind: 'exit', code: 0, stdout: helpText() };
  if (args.kind === 'usage-error') return { kind: 'exit', code: EXIT_USAGE, stderr: `${args.message}\n${USAGE_HEADER}` };
  if (args.positional.length > 0) return invalid(`'${args.positional[0]}' is not a valid flag`);
  if (args.values.get('version') === true) return { kind: 'exit', code: 0, stdout: versionText(packageVersion()) };

  const fromFlag = args.values.get('config-file');
  const configFile = typeof fromFlag === 'string' && fromFlag !== '' ? fromFlag : (env['ETCD_CONFIG_FILE'] ?? '');
  if (configFile !== '') {
    try {
      const loaded = loadConfigFile(configFile);
      return {
        kind: 'config',
        config: loaded.config,
        warnings: [...loaded.warnings, ...compatibilityWarnings(loaded.config)],
        notices: [`loaded server configuration from ${configFile}; other configuration command line flags and environment variables will be ignored if provided`],
      };
    } catch (e) {
      if (e instanceof ConfigError) return invalid(e.message);
      throw e;
    }
  }

  const merged = applyEnv(args.values, env);
  if (merged.kind === 'error') return invalid(merged.message);
  if (merged.kind === 'conflict') return { kind: 'exit', code: EXIT_INVALID, stderr: `${merged.message}\n` };
  const built = buildConfig(merged.values, 'flags');
  if (!built.ok) return invalid(built.error);
  return {
    kind: 'config',
    config: built.config,
    warnings: [...merged.warnings, ...compatibilityWarnings(built.config)],
    notices: merged.notices,
  };
}

/**
 * etcd's defaults with `overrides` applied, derived fields following them (dataDir from
 * name, initialCluster from name and initialAdvertisePeerUrls) unless overridden too.
 * Throws ConfigError when the result is not a valid configuration.
 */
export function defaultConfig(overrides: Partial<EtcdConfig> = {}): EtcdConfig {
  const built = buildConfig(new Map(), 'library', overrides);
  if (!built.ok) throw new ConfigError(built.error);
  return built.config;
}

let cachedVersion: string | undefined;

/** etcd-ts's own version, from the package.json above this module (src/ or dist/src/). */
export function packageVersion(): string {
  if (cachedVersion !== undefined) return cachedVersion;
  cachedVersion = 'unknown';
  let dir = new URL('.', import.meta.url);
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'etcd-ts' && typeof pkg.version === 'string') {
        cachedVersion = pkg.version;
        break;
      }
    } catch {
      // not here; look one level up
    }
    dir = new URL('..', dir);
  }
  return cachedVersion;
}

export { ConfigError } from './errors.js';
export { configFromFile, configFromYaml, loadConfigFile, type LoadedConfigFile } from './file.js';
export { ETCD_VERSION } from './help.js';
export { DEFAULT_QUOTA_BYTES, MAX_ELECTION_MS } from './build.js';
export { FLAGS, flagToEnv, flagToKey, type FlagSpec } from './flags.js';
export { urlPort, urlString } from './values.js';
export * from './types.js';
