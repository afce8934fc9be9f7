// --log-package-levels, as etcd 3.4 reads it for its default capnslog logger: a list of
// `package=LEVEL` settings ("etcdserver=WARNING,wal=DEBUG"; `*` for every package),
// levels in capnslog's words, letters or digits. etcd-ts's loggers stand for etcd's
// packages by their `caller`; the member's own lines (no caller) are etcdserver's. raft's
// lines are no package's: etcd 3.4's raft writes through a logger of its own, which the
// setting does not reach ("became leader at term" stays, whatever it says).

/** A level of the node's logger: pino's, and `panic` between error and fatal (logger.ts). */
type LoggerLevel = 'panic' | 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/** The etcd package whose lines each of etcd-ts's callers writes. */
const CALLER_PACKAGE: Readonly<Record<string, string>> = {
  auth: 'auth',
  compactor: 'compactor',
  discovery: 'discovery',
  embed: 'embed',
  maintenance: 'etcdserver/api/v3rpc',
  mvcc: 'mvcc',
  rafthttp: 'rafthttp',
  snap: 'snap',
  v2auth: 'etcdserver/auth',
  wal: 'wal',
};
/** The package of the lines written without a caller. */
const SERVER_PACKAGE = 'etcdserver';

/** capnslog's levels as the logger's (NOTICE, between WARNING and INFO, has no level of its own here). */
const LEVELS: ReadonlyArray<readonly [readonly string[], LoggerLevel]> = [
  [['CRITICAL', 'C'], 'panic'],
  [['ERROR', '0', 'E'], 'error'],
  [['WARNING', '1', 'W'], 'warn'],
  [['NOTICE', '2', 'N'], 'info'],
  [['INFO', '3', 'I'], 'info'],
  [['DEBUG', '4', 'D'], 'debug'],
  [['TRACE', '5', 'T'], 'trace'],
];

/** Package name to level; `*` is every package not named. */
export type PackageLevels = ReadonlyMap<string, LoggerLevel>;

/** Parses capnslog's `pkg=LEVEL,...`; throws with capnslog's words. */
export function parsePackageLevels(conf: string): PackageLevels {
  const out = new Map<string, LoggerLevel>();
  for (const setting of conf.split(',')) {
    const parts = setting.split('=');
    if (parts.length !== 2) throw new Error(`oddly structured \`pkg=level\` option: ${setting}`);
    const level = LEVELS.find(([words]) => words.includes(parts[1]!))?.[1];
    if (level === undefined) throw new Error(`couldn't parse log level ${parts[1]}`);
    out.set(parts[0]!, level);
  }
  return out;
}

/** The level of a logger whose lines carry `caller` (undefined: the member's own), or undefined when not set. */
export function packageLevel(levels: PackageLevels, caller: string | undefined): LoggerLevel | undefined {
  // a module's caller is its file ("etcdmain/main.ts"): its directory is the package
  const pkg = caller === undefined ? SERVER_PACKAGE : (CALLER_PACKAGE[caller] ?? (caller.includes('/') ? caller.slice(0, caller.lastIndexOf('/')) : undefined));
  // a logger that stands for no package of etcd's is not one of '*''s either
  if (pkg === undefined) return undefined;
  return levels.get(pkg) ?? levels.get('*');
}
