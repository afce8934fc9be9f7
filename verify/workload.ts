// The KV workload: N concurrent clients, each issuing one request at a time
// (generate.ts) and recording it with its call and return time. A request that
// fails or times out is recorded with an unknown outcome (output null, return
// +Infinity) unless it provably never left the client.

import { EtcdClient, neverSent } from './client.js';
import { Knowledge, RequestGenerator, type KeySpace } from './generate.js';
import type { KvRequest, Operation } from './history.js';
import { Rng } from './rng.js';

export interface WorkloadOptions {
  clients: number;
  space: KeySpace;
  /** per-request deadline */
  requestTimeoutMs: number;
  seed: number;
  /** the endpoints client c talks to */
  endpointsFor(client: number): string[];
  /** ms since the run started */
  clock(): number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Workload {
  readonly operations: Operation[] = [];
  /** highest header revision any response carried */
  lastRevision = 1;
  private stopped = false;
  private loops: Promise<void>[] = [];
  private readonly clients: EtcdClient[] = [];

  constructor(private readonly o: WorkloadOptions) {}

  start(): void {
    for (let c = 0; c < this.o.clients; c++) {
      const client = new EtcdClient(this.o.endpointsFor(c));
      this.clients.push(client);
      this.loops.push(this.loop(c, client));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
    for (const c of this.clients) c.close();
  }

  private async loop(c: number, client: EtcdClient): Promise<void> {
    const rng = new Rng(this.o.seed * 7919 + c);
    const gen = new RequestGenerator(rng, this.o.space, c);
    const knowledge = new Knowledge();
    while (!this.stopped) {
      const op = await this.issue(c, client, gen.next(knowledge));
      if (op === null) {
        await sleep(rng.int(20, 100));
        continue;
      }
      if (op.output === null) {
        await sleep(rng.int(10, 50)); // don't spin against a member that is down
      } else {
        knowledge.observe(op);
      }
    }
  }

  /** Runs and records one request; null when it never reached a server. */
  async issue(c: number, client: EtcdClient, input: KvRequest): Promise<Operation | null> {
    const op: Operation = { id: -1, client: c, endpoint: client.endpoints.join(','), input, call: this.o.clock(), return: Infinity, output: null };
    try {
      op.output = await client.execute(input, this.o.requestTimeoutMs);
      op.return = this.o.clock();
      this.lastRevision = Math.max(this.lastRevision, op.output.revision);
    } catch (e) {
      if (neverSent(e)) return null;
      op.error = e instanceof Error ? e.message : String(e);
    }
    this.operations.push(op);
    return op;
  }
}
