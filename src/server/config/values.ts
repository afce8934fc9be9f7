// Parsers for flag values in the syntax etcd (Go's flag, strconv and time packages)
// accepts, so a command line that works with etcd works here. Each returns a result
// value; the caller turns the reason into etcd's message.

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(reason: string): Parsed<T> => ({ ok: false, reason });

/** Go's flag package reports every numeric syntax error with these two words. */
export const PARSE_ERROR = 'parse error';
export const RANGE_ERROR = 'value out of range';

// Go integer literals as strconv.Parse{Int,Uint}(s, 0, …) take them: decimal, 0x, 0o/0, 0b,
// underscores only between digits.
const GO_INT = /^(0[xX](_?[0-9a-fA-F])+|0[oO](_?[0-7])+|0[bB](_?[01])+|0(_?[0-7])*|[1-9](_?[0-9])*)$/;

function goIntMagnitude(s: string): bigint | undefined {
  if (!GO_INT.test(s)) return undefined;
  const digits = s.replace(/_/g, '');
  if (/^0[0-7]+$/.test(digits)) return BigInt('0o' + digits.slice(1));
  return BigInt(digits);
}

/**
 * An integer flag. Values beyond 2^53 are refused as out of range: they would not
 * survive as a JS number and no etcd setting needs them.
 */
export function parseGoInt(s: string, min: bigint, max: bigint): Parsed<number> {
  let sign = 1n;
  let body = s;
  if (min < 0n && (body.startsWith('-') || body.startsWith('+'))) {
    if (body.startsWith('-')) sign = -1n;
    body = body.slice(1);
  }
  const mag = goIntMagnitude(body);
  if (mag === undefined) return fail(PARSE_ERROR);
  const v = sign * mag;
  const safe = BigInt(Number.MAX_SAFE_INTEGER);
  if (v < min || v > max || v > safe || v < -safe) return fail(RANGE_ERROR);
  return ok(Number(v));
}

export const UINT64_MAX = (1n << 64n) - 1n;
export const UINT32_MAX = (1n << 32n) - 1n;
export const INT64_MIN = -(1n << 63n);
export const INT64_MAX = (1n << 63n) - 1n;

/** strconv.ParseBool */
export function parseGoBool(s: string): Parsed<boolean> {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return ok(true);
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return ok(false);
  return fail(PARSE_ERROR);
}

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3, // U+00B5 micro sign
  'μs': 1e-3, // U+03BC Greek mu
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * time.ParseDuration, in milliseconds: "300ms", "1.5h", "2h45m", "-1s", "0".
 * The reason is Go's own message, which etcd shows for durations it parses late
 * (e.g. --auto-compaction-retention).
 */
export function parseGoDuration(s: string): Parsed<number> {
  const quoted = JSON.stringify(s);
  let rest = s;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest[0] === '-') sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return ok(0);
  if (rest === '') return fail(`time: invalid duration ${quoted}`);
  let total = 0;
  while (rest !== '') {
    const num = /^([0-9]*)(\.[0-9]*)?/.exec(rest);
    const numText = num?.[0] ?? '';
    if (numText === '' || numText === '.') return fail(`time: invalid duration ${quoted}`);
    rest = rest.slice(numText.length);
    const unit = /^[^0-9.]*/.exec(rest)?.[0] ?? '';
    if (unit === '') return fail(`time: missing unit in duration ${quoted}`);
    const factor = UNIT_MS[unit];
    if (factor === undefined) return fail(`time: unknown unit ${JSON.stringify(unit)} in duration ${quoted}`);
    rest = rest.slice(unit.length);
    total += Number(numText) * factor;
  }
  return ok(sign * total);
}

const URL_SCHEMES = ['http', 'https', 'unix', 'unixs'];

/**
 * Go's net.SplitHostPort accepts "host:port", "[v6]:port" and an empty port, and
 * nothing without a colon.
 */
export function splitHostPort(authority: string): { host: string; port: string } | undefined {
  if (authority.startsWith('[')) {
    const m = /^\[([^\]]*)\]:([^:]*)$/.exec(authority);
    return m ? { host: m[1]!, port: m[2]! } : undefined;
  }
  const i = authority.lastIndexOf(':');
  if (i < 0) return undefined;
  const host = authority.slice(0, i);
  if (host.includes(':') || host.includes('[') || host.includes(']')) return undefined;
  return { host, port: authority.slice(i + 1) };
}

/** One URL as etcd's types.NewURLs takes it: scheme http(s)/unix(s), host:port, no path. */
export function parseEtcdUrl(raw: string): Parsed<URL> {
  const s = raw.trim();
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(s)?.[1]?.toLowerCase() ?? '';
  if (!URL_SCHEMES.includes(scheme)) return fail(`URL scheme must be http, https, unix, or unixs: ${s}`);
  const m = /^[^:]+:\/\/([^/?#]*)(.*)$/s.exec(s);
  const authority = m?.[1] ?? '';
  const hostPort = splitHostPort(authority.slice(authority.lastIndexOf('@') + 1));
  if (!m || !hostPort) return fail(`URL address does not have the form "host:port": ${s}`);
  if (m[2] !== '') return fail(`URL must not contain a path: ${s}`);
  // Go accepts an empty host here and etcd refuses it later for advertised URLs; a URL
  // object cannot hold one, so it is refused now, in etcd's later words.
  if (hostPort.host === '' && (scheme === 'http' || scheme === 'https')) return fail(`unexpected empty host (${s})`);
  if (hostPort.port !== '' && !/^[0-9]+$/.test(hostPort.port)) return fail(`invalid port ":${hostPort.port}" in URL: ${s}`);
  try {
    return ok(new URL(s));
  } catch {
    return fail(`invalid URL: ${s}`);
  }
}

/**
 * The socket file a unix:// or unixs:// URL names: its host and port as written, relative
 * to the working directory (`unix://etcd.unix:1` is the file `etcd.unix:1`), as etcd has it.
 */
export function unixSocketPath(u: URL): string {
  return u.host;
}

/** The port of an etcd URL, with the scheme's default when the URL leaves it out. */
export function urlPort(u: URL): number {
  if (u.port !== '') return Number(u.port);
  return u.protocol === 'https:' || u.protocol === 'unixs:' ? 443 : 80;
}

/**
 * The URL as etcd prints it (Go's url.String: no trailing slash, port kept even when
 * it is the scheme's default). Members, logs and `member list` use this form.
 */
export function urlString(u: URL): string {
  const port = u.port !== '' ? u.port : String(urlPort(u));
  return `${u.protocol}//${u.hostname}:${port}`;
}

/**
 * A comma-separated URL list (etcd's UniqueURLs): each URL checked, duplicates
 * dropped, sorted by their string form as etcd sorts them.
 */
export function parseUrlList(s: string): Parsed<URL[]> {
  const byString = new Map<string, URL>();
  for (const part of s.split(',')) {
    const u = parseEtcdUrl(part);
    if (!u.ok) return u;
    byString.set(urlString(u.value), u.value);
  }
  const keys = [...byString.keys()].sort();
  return ok(keys.map((k) => byString.get(k)!));
}

/**
 * etcd's UniqueURLsWithExceptions(…, "*") (--cors): "*" alone, or URLs as --listen-client-urls
 * takes them, kept as Go prints them (an Origin header is compared with those strings).
 */
export function parseOriginList(s: string): Parsed<string[]> {
  if (s === '*') return ok(['*']);
  const urls = parseUrlList(s);
  return urls.ok ? ok(urls.value.map(urlString)) : urls;
}

/** A comma-separated list of strings (etcd's UniqueStrings): trimmed, deduplicated, sorted. */
export function parseStringList(s: string): string[] {
  const set = new Set(
    s
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x !== ''),
  );
  return [...set].sort();
}

/**
 * `--initial-cluster name=url,name=url2,...` (a member may appear several times, once
 * per peer URL).
 */
export function parseInitialCluster(s: string): Parsed<Map<string, URL[]>> {
  const raw = new Map<string, string[]>();
  for (const entry of s.split(',')) {
    if (entry.trim() === '') continue;
    const eq = entry.indexOf('=');
    const name = (eq < 0 ? entry : entry.slice(0, eq)).trim();
    const value = eq < 0 ? '' : entry.slice(eq + 1);
    if (name === '') return fail(`member entry ${JSON.stringify(entry)} has no name; use name=peer-url`);
    raw.set(name, [...(raw.get(name) ?? []), value]);
  }
  const out = new Map<string, URL[]>();
  for (const [name, values] of raw) {
    const urls = parseUrlList(values.join(','));
    if (!urls.ok) return urls;
    out.set(name, urls.value);
  }
  return ok(out);
}
