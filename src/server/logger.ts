// Logging as etcd's zap logger prints it: one JSON object per line,
//   {"level":"info","ts":"2024-01-02T03:04:05.678Z","caller":"etcdserver/server.ts","msg":"..."}
// (pino writes "msg" after the fields instead of before; jq and grep do not care).
// Writes are synchronous so the last line before an exit, e.g. a fatal error, is not lost.

import { pino } from 'pino';
import type { EtcdConfig } from './config/index.js';
import { type PackageLevels, packageLevel, parsePackageLevels } from './log-package-levels.js';

export type Logger = pino.Logger;

/** pino's numbers for etcd's level words; `panic` sits between error and fatal as in zap. */
const PANIC_LEVEL = 55;

export interface CreateLoggerOptions {
  /** write here instead of --log-outputs (tests, embedders collecting lines) */
  readonly destination?: pino.DestinationStream;
}

/**
 * The root logger for a node: level from --log-level, or from --log-package-levels for the
 * packages it names (etcd reads those only for its capnslog logger, its default); lines
 * to every --log-outputs target.
 */
export function createLogger(
  config: Pick<EtcdConfig, 'logLevel' | 'logOutputs'> & Partial<Pick<EtcdConfig, 'logger' | 'logPackageLevels'>>,
  opts: CreateLoggerOptions = {},
): Logger {
  const destination = opts.destination ?? openOutputs(config.logOutputs);
  let levels: PackageLevels | undefined;
  let unparsed: string | undefined;
  if (config.logger === 'capnslog' && config.logPackageLevels) {
    try {
      levels = parsePackageLevels(config.logPackageLevels);
    } catch (err) {
      unparsed = (err as Error).message;
    }
  }
  const root = pino(
    {
      level: (levels && packageLevel(levels, undefined)) ?? config.logLevel,
      // a module's logger takes its package's level, not its parent's
      onChild: levels
        ? (child) => {
            child.level = packageLevel(levels, (child.bindings() as { caller?: string }).caller) ?? config.logLevel;
          }
        : undefined,
      customLevels: { panic: PANIC_LEVEL },
      base: undefined,
      timestamp: () => `,"ts":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
      // zap's error field: the message text, not pino's serialized object
      serializers: { error: errorText, err: errorText },
    },
    destination,
  ) as unknown as Logger;
  // etcd's words, and it goes on with --log-level for every package
  if (unparsed !== undefined) root.warn(`couldn't parse log level string: ${unparsed}, continuing with default levels`);
  return root;
}

/** A per-module logger: every line carries `caller`, e.g. "etcdserver/raft.ts". */
export function moduleLogger(parent: Logger, caller: string): Logger {
  return parent.child({ caller });
}

function errorText(e: unknown): unknown {
  return e instanceof Error ? e.message : e;
}

/**
 * `default` and `stderr` are standard error (etcd 3.4 under systemd would pick journald
 * for `default`; stderr reaches the journal too), `stdout` standard output, anything
 * else a file appended to.
 */
function openOutputs(outputs: readonly string[]): pino.DestinationStream {
  const targets = (outputs.length === 0 ? ['default'] : outputs).map(openOutput);
  if (targets.length === 1) return targets[0]!;
  return {
    write(line: string) {
      for (const t of targets) t.write(line);
    },
  };
}

function openOutput(output: string): pino.DestinationStream {
  switch (output) {
    case 'default':
    case 'stderr':
      return pino.destination({ dest: 2, sync: true });
    case 'stdout':
      return pino.destination({ dest: 1, sync: true });
    default:
      try {
        return pino.destination({ dest: output, sync: true, append: true });
      } catch (e) {
        throw new Error(`cannot open log output ${JSON.stringify(output)} (--log-outputs): ${(e as Error).message}`);
      }
  }
}
