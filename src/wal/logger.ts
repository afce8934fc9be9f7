// The logging the WAL layer needs: pino's `(fields, message)` call shape, so the
// server can pass its pino logger (or a child of it) straight in. Field names
// follow etcd's zap fields ("path", "took", "expected-duration"...).

export interface WalLogger {
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
}

export const silentLogger: WalLogger = {
  info() {},
  warn() {},
};

/** A duration the way Go's time.Duration prints it in etcd's logs: "1.5s", "250ms", "80µs". */
export function formatDuration(seconds: number): string {
  if (seconds >= 1) return `${trim(seconds)}s`;
  if (seconds >= 1e-3) return `${trim(seconds * 1e3)}ms`;
  return `${trim(seconds * 1e6)}µs`;
}

function trim(n: number): string {
  return String(Number(n.toFixed(6)));
}
