// The command line as Go's flag package (and so etcd) reads it: `-flag`/`--flag`,
// `--flag=value` or `--flag value`, bool flags only as `--flag` or `--flag=bool`,
// parsing stops at the first non-flag argument or at `--`.

import { FLAGS_BY_NAME, parseFlagValue, type FlagValue } from './flags.js';

export type ArgvResult =
  | { readonly kind: 'flags'; readonly values: ReadonlyMap<string, FlagValue>; readonly positional: readonly string[] }
  | { readonly kind: 'help' }
  /** a usage error: Go prints the message and the usage, etcd exits 2 */
  | { readonly kind: 'usage-error'; readonly message: string };

export function parseArgv(argv: readonly string[]): ArgvResult {
  const values = new Map<string, FlagValue>();
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i]!;
    if (arg.length < 2 || arg[0] !== '-') break;
    let minuses = 1;
    if (arg[1] === '-') {
      minuses = 2;
      if (arg.length === 2) {
        i++; // "--" ends the flags
        break;
      }
    }
    const body = arg.slice(minuses);
    if (body === '' || body[0] === '-' || body[0] === '=') return { kind: 'usage-error', message: `bad flag syntax: ${arg}` };
    i++;
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const inline = eq < 0 ? undefined : body.slice(eq + 1);
    const spec = FLAGS_BY_NAME.get(name);
    if (spec === undefined) {
      if (name === 'help' || name === 'h') return { kind: 'help' };
      return { kind: 'usage-error', message: `flag provided but not defined: -${name}` };
    }
    if (spec.kind === 'bool') {
      if (inline === undefined) {
        values.set(name, true);
        continue;
      }
      const b = parseFlagValue(spec, inline);
      if (!b.ok) return { kind: 'usage-error', message: `invalid boolean value ${JSON.stringify(inline)} for -${name}: ${b.reason}` };
      values.set(name, b.value);
      continue;
    }
    let raw = inline;
    if (raw === undefined) {
      if (i >= argv.length) return { kind: 'usage-error', message: `flag needs an argument: -${name}` };
      raw = argv[i]!;
      i++;
    }
    const v = parseFlagValue(spec, raw);
    if (!v.ok) return { kind: 'usage-error', message: `invalid value ${JSON.stringify(raw)} for flag -${name}: ${v.reason}` };
    values.set(name, v.value);
  }
  return { kind: 'flags', values, positional: argv.slice(i) };
}
