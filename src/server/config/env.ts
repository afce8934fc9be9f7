// ETCD_* environment variables, with etcd 3.4's rules (pkg/flags SetFlagsFromEnv):
// a non-empty variable sets its flag unless the flag is on the command line, in which
// case the pair is a fatal conflict; any other ETCD_* variable is only a warning.

import { FLAGS, flagToEnv, parseFlagValue, type FlagValue } from './flags.js';

export type EnvResult =
  | {
      readonly kind: 'ok';
      readonly values: ReadonlyMap<string, FlagValue>;
      /** what etcd logs at info level: `recognized and used environment variable ...` */
      readonly notices: readonly string[];
      readonly warnings: readonly string[];
    }
  /** a bad value is reported as a flag error; a conflict is fatal on its own, as etcd logs it */
  | { readonly kind: 'error'; readonly message: string }
  | { readonly kind: 'conflict'; readonly message: string };

/**
 * Merge variables into the flags given on the command line. The result holds both;
 * command-line values are never overridden (a clash is an error instead).
 */
export function applyEnv(
  cliValues: ReadonlyMap<string, FlagValue>,
  env: Readonly<Record<string, string | undefined>>,
): EnvResult {
  const values = new Map(cliValues);
  const used = new Set<string>();
  const shadowed = new Set<string>();
  const notices: string[] = [];
  for (const spec of FLAGS) {
    if (spec.cliOnly) continue;
    const key = flagToEnv(spec.name);
    if (cliValues.has(spec.name)) {
      shadowed.add(key);
      continue;
    }
    const raw = env[key];
    if (raw === undefined || raw === '') continue;
    used.add(key);
    const v = parseFlagValue(spec, raw);
    if (!v.ok) return { kind: 'error', message: `invalid value ${JSON.stringify(raw)} for ${key}: ${v.reason}` };
    values.set(spec.name, v.value);
    notices.push(`recognized and used environment variable ${key}=${raw}`);
  }
  const warnings: string[] = [];
  for (const [key, raw] of Object.entries(env)) {
    if (raw === undefined || used.has(key)) continue;
    if (shadowed.has(key)) {
      return {
        kind: 'conflict',
        message: `conflicting environment variable ${JSON.stringify(key)} is shadowed by corresponding command-line flag (either unset environment variable or disable flag)`,
      };
    }
    // ETCD_CONFIG_FILE, when non-empty, was taken before flags were read at all.
    if (key.startsWith('ETCD_')) {
      warnings.push(`unrecognized environment variable ${key}=${raw}`);
    }
  }
  return { kind: 'ok', values, notices, warnings };
}
