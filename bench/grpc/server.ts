// Issue 19's kept benchmark for the hand-written gRPC server: etcd-ts's GrpcServer
// (src/server/grpc, gRPC's thin layer over its own HTTP/2 server, h2/) against @grpc/grpc-js's Server,
// both serving the same etcd KV service definition (src/server/pb.ts) with the same
// handlers, which answer at once with a fixed response: what is measured is the server's
// cost of a call, not the member's work. The load is goload (etcd's Go client), the
// servers run one at a time in a child process, alternating round by round, and the
// child's CPU per call is read around each load.
//
//   npx tsx bench/grpc/server.ts -- [--rounds 3] [--duration 4s] [--clients 64] [--goload /tmp/goload] [--baseline DIR]
//
// --baseline adds the GrpcServer of another built checkout (DIR/dist), e.g. 65bee42's,
// which served gRPC over node:http2, as one more kind in the same rounds.
//
// Figures and their reading: bench/grpc/README.md.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Long from 'long';
import { freePort } from '../free-port.js';
import type * as OurServer from '../../src/server/grpc/server.js';

/** The servers compared: this checkout's, grpc-js's, the frame floor, and 'GrpcServer at DIR' for a --baseline. */
type Kind = string;
const OURS = 'etcd-ts GrpcServer';
const FIXED_KINDS: readonly Kind[] = [OURS, 'grpc-js Server', 'frame floor'];
const BASELINE_PREFIX = 'GrpcServer at ';

const here = path.dirname(fileURLToPath(import.meta.url));

/** What every handler answers: a header as a member fills it in, nothing else. */
const HEADER = { cluster_id: Long.fromString('14841639068965178418', true), member_id: Long.fromString('10276657743932975437', true), revision: Long.fromNumber(1234), raft_term: Long.fromNumber(2) };

/** The child: serves KV with the fixed answers on `port`, prints its CPU time (µs) for each line read from stdin. */
async function serve(kind: Kind, port: number): Promise<void> {
  const { serviceDefinition } = await import('../../src/server/pb.js');
  const kv = serviceDefinition('etcdserverpb.KV');
  const answer = (_call: unknown, callback: (err: null, res: object) => void): void => callback(null, { header: HEADER });
  const impl = { Put: answer, Range: answer, DeleteRange: answer, Txn: answer, Compact: answer };
  if (kind === 'grpc-js Server') {
    const grpc = await import('@grpc/grpc-js');
    const server = new grpc.Server();
    server.addService(kv, impl);
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    );
  } else if (kind === 'frame floor') {
    // the same (de)serializers as the others' calls, on frames alone (frame-floor.ts)
    const { serveFrames } = await import('./frame-floor.js');
    const put = kv.Put!;
    const handle = (request: Buffer): Buffer => {
      put.requestDeserialize(request);
      return put.responseSerialize({ header: HEADER });
    };
    await new Promise<void>((resolve) => net.createServer((socket) => serveFrames(socket, handle)).listen(port, '127.0.0.1', resolve));
  } else {
    const where = kind.startsWith(BASELINE_PREFIX) ? path.join(kind.slice(BASELINE_PREFIX.length), 'dist/src/server/grpc/server.js') : '../../src/server/grpc/server.js';
    const { GrpcServer } = (await import(where)) as typeof OurServer;
    const server = new GrpcServer({ maxRequestBytes: 1.5 * 1024 * 1024 });
    server.addService(kv, impl);
    const injector = server.createConnectionInjector();
    await new Promise<void>((resolve) => net.createServer((socket) => injector.injectConnection(socket)).listen(port, '127.0.0.1', resolve));
  }
  const cpu = (): number => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  process.stdout.write(`ready ${cpu()}\n`);
  for await (const _line of createInterface({ input: process.stdin })) process.stdout.write(`${cpu()}\n`);
}

class Child {
  private readonly lines: AsyncIterator<string>;

  private constructor(private readonly proc: ChildProcess) {
    this.lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
  }

  static async start(kind: Kind, port: number): Promise<Child> {
    const proc = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--serve', kind, '--port', String(port)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const child = new Child(proc);
    const first = await child.line();
    if (!first.startsWith('ready')) throw new Error(`${kind}: unexpected first line ${first}`);
    return child;
  }

  async cpuUs(): Promise<number> {
    this.proc.stdin!.write('cpu\n');
    return Number(await this.line());
  }

  stop(): void {
    this.proc.kill('SIGKILL');
  }

  private async line(): Promise<string> {
    const r = await this.lines.next();
    if (r.done === true) throw new Error('the server process ended');
    return r.value;
  }
}

interface Row {
  ops_per_s: number;
  cpu_us_per_call: number;
  p99_ms: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: 'string' },
      port: { type: 'string' },
      rounds: { type: 'string', default: '3' },
      duration: { type: 'string', default: '4s' },
      clients: { type: 'string', default: '64' },
      goload: { type: 'string', default: '/tmp/goload' },
      baseline: { type: 'string' },
    },
    allowPositionals: true,
  });
  if (values.serve !== undefined) {
    if (!FIXED_KINDS.includes(values.serve) && !values.serve.startsWith(BASELINE_PREFIX)) throw new Error(`--serve must be one of ${FIXED_KINDS.join(', ')}, or ${BASELINE_PREFIX}DIR`);
    return serve(values.serve, Number(values.port));
  }
  const KINDS = values.baseline === undefined ? FIXED_KINDS : [...FIXED_KINDS, BASELINE_PREFIX + path.resolve(values.baseline)];
  const goload = values.goload;
  if (!existsSync(goload)) execFileSync('bash', [path.join(here, '../../../shared/goload/build.sh'), goload], { stdio: 'inherit' });
  const rounds = Number(values.rounds);
  const clients = Number(values.clients);
  const rows: Record<Kind, Row[]> = Object.fromEntries(KINDS.map((k) => [k, []]));
  for (let round = 0; round < rounds; round++) {
    // alternate which server goes first, so that a drift in the machine's load hits both
    for (const kind of round % 2 === 0 ? KINDS : [...KINDS].reverse()) {
      const port = await freePort();
      const child = await Child.start(kind, port);
      try {
        const load = (duration: string): { ops: number; ops_per_s: number; p99_ms: number; errors: number } =>
          JSON.parse(
            execFileSync(goload, ['-endpoints', `127.0.0.1:${port}`, '-op', 'put', '-clients', String(clients), '-conns', String(Math.min(8, clients)), '-duration', duration])
              .toString()
              .trim()
              .split('\n')
              .pop()!,
          );
        load('1s'); // warm-up: connections, JIT
        const before = await child.cpuUs();
        const r = load(values.duration);
        const cpu = (await child.cpuUs()) - before;
        if (r.errors > 0) throw new Error(`${kind}: ${r.errors} errors`);
        const row = { ops_per_s: r.ops_per_s, cpu_us_per_call: cpu / r.ops, p99_ms: r.p99_ms };
        rows[kind]!.push(row);
        console.log(`round ${round} ${kind.padEnd(18)} ${Math.round(row.ops_per_s)} calls/s, ${row.cpu_us_per_call.toFixed(1)} µs CPU per call, p99 ${row.p99_ms.toFixed(2)} ms`);
      } finally {
        child.stop();
      }
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`\nunary Put with a fixed answer, goload ${clients} clients, ${rounds} rounds of ${values.duration}, ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log('server               calls/s  CPU µs/call  (medians)');
  for (const kind of KINDS) {
    console.log(`${kind.padEnd(20)} ${String(Math.round(median(rows[kind]!.map((r) => r.ops_per_s)))).padStart(7)}  ${median(rows[kind]!.map((r) => r.cpu_us_per_call)).toFixed(1).padStart(11)}`);
  }
  for (const other of KINDS.filter((k) => k !== OURS)) {
    const perRound = rows[OURS]!.map((r, i) => rows[other]![i]!.cpu_us_per_call / r.cpu_us_per_call);
    console.log(`CPU per call, ${other} / etcd-ts, per round: ${perRound.map((x) => x.toFixed(2)).join(', ')}; median ${median(perRound).toFixed(2)}`);
  }
}

await main();
