// bcrypt off the event loop. bcryptjs is JavaScript: one compare at cost 10 keeps a thread
// busy for a tenth to a third of a second, and its "async" mode only slices that work into
// 100 ms turns of the same event loop, so a thousand failed logins in flight would stall
// every put and get behind them for minutes.
//
// etcd 3.4 puts no limit of its own on Authenticate (v3_server.go: a linearizable read,
// CheckPassword, a proposal; no rate limiter anywhere in etcdserver or auth): its bcrypt
// runs in the request's goroutine, which Go spreads over GOMAXPROCS threads and preempts,
// so a flood of failed logins costs CPU but never stops the member answering other
// requests, and at most one bcrypt per core runs at a time. This pool gives the same
// shape: every bcrypt (v3 Authenticate, v2 basic auth, password hashing) runs in a worker
// thread, one per core but the one the event loop needs, and the rest wait in order.

import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

type Job =
  | { readonly op: 'compare'; readonly password: string; readonly hash: string }
  | { readonly op: 'hash'; readonly password: string; readonly cost: number };

interface Pending {
  readonly job: Job;
  resolve(result: boolean | string): void;
  reject(err: Error): void;
}

/** Runs in each worker: one job at a time, synchronously (the thread has nothing else to do). */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const bcrypt = require(workerData.bcryptPath);
parentPort.on('message', (job) => {
  try {
    const result = job.op === 'hash' ? bcrypt.hashSync(job.password, job.cost) : bcrypt.compareSync(job.password, job.hash);
    parentPort.postMessage({ result });
  } catch (err) {
    parentPort.postMessage({ error: String((err && err.message) || err) });
  }
});
`;

class BcryptPool {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Pending>();
  private readonly queue: Pending[] = [];
  private started = 0;

  constructor(private readonly size: number) {}

  run(job: Job): Promise<boolean | string> {
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const worker = this.idle.pop() ?? (this.started < this.size ? this.spawn() : undefined);
      if (worker === undefined) return;
      const next = this.queue.shift()!;
      this.busy.set(worker, next);
      worker.ref(); // a job in flight keeps the process up until it answers
      worker.postMessage(next.job);
    }
  }

  private spawn(): Worker {
    this.started++;
    const bcryptPath = createRequire(import.meta.url).resolve('bcryptjs');
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcryptPath } });
    worker.unref();
    worker.on('message', (m: { result?: boolean | string; error?: string }) => {
      const p = this.busy.get(worker);
      this.busy.delete(worker);
      worker.unref();
      this.idle.push(worker);
      if (p !== undefined) {
        if (m.error !== undefined) p.reject(new Error(m.error));
        else p.resolve(m.result!);
      }
      this.dispatch();
    });
    worker.on('error', (err) => this.lost(worker, err));
    worker.on('exit', (code) => this.lost(worker, new Error(`bcrypt worker exited with code ${code}`)));
    return worker;
  }

  /** A worker that died fails its job; the next job starts a new one. */
  private lost(worker: Worker, err: Error): void {
    const p = this.busy.get(worker);
    this.busy.delete(worker);
    const i = this.idle.indexOf(worker);
    if (i >= 0) this.idle.splice(i, 1);
    if (p === undefined && i < 0) return; // already counted out
    this.started--;
    p?.reject(err);
    this.dispatch();
  }
}

/** One core stays with the event loop; a one-core machine still gets a worker. */
const pool = new BcryptPool(Math.max(1, availableParallelism() - 1));

/** bcrypt.compare in a worker; a hash bcrypt cannot read matches no password. */
export async function bcryptCompare(password: string, hash: string): Promise<boolean> {
  try {
    return (await pool.run({ op: 'compare', password, hash })) === true;
  } catch {
    return false;
  }
}

/** bcrypt.hash in a worker, with a fresh salt at `cost`. */
export async function bcryptHash(password: string, cost: number): Promise<string> {
  return (await pool.run({ op: 'hash', password, cost })) as string;
}
