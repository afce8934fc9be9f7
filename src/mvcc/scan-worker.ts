// One key range of the store read on a worker thread, for a backup of a big store.
//
// Reading the store through classic-level costs the thread that reads it two Buffers per
// record (napi_create_buffer_copy, and the garbage collector after them): about what
// etcd spends on its whole `snapshot save`, before any bbolt page is built
// (bench/snapshot/README.md). Here a worker opens the same LevelDB (classic-level shares
// one handle between threads that open it with `multithreading`), takes its own LevelDB
// snapshot at the instant the main thread freezes its view, reads the range and packs
// each read into one transferable buffer; the main thread only cuts views out of it. The
// read and the page building then run on two threads at once.
//
// The worker is JavaScript in a string (as bcrypt-pool.ts's) so that the member's bundle
// needs no file of its own for it; it requires classic-level from the path resolved here.

import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** Control word states, in a SharedArrayBuffer both threads see. */
const Control = {
  /** the worker is opening the db */
  Opening: 0,
  /** the db is open; the worker waits for the freeze */
  Ready: 1,
  /** the main thread froze its view: the worker takes its snapshot now */
  Freeze: 2,
  /** the worker holds its snapshot, taken while the main thread waited */
  Frozen: 3,
  /** the main thread gave up on the worker (closed before the freeze, or no answer in time) */
  Cancelled: 4,
} as const;

/** Reads the worker may have sent ahead of the consumer (each up to ITERATOR_BATCH_BYTES). */
const CREDIT = 4;
/** Entries per LevelDB read, and the bytes after which a read stops short of them (backend.ts's). */
const ITERATOR_BATCH = 1000;
const ITERATOR_BATCH_BYTES = 1 << 20;
/**
 * How long the main thread waits, blocked, for the worker's snapshot. The worker is
 * parked in Atomics.wait for it, so this is one futex wake-up; on a machine loaded far
 * beyond its cores that can take tens of milliseconds. Past this the backup reads the
 * range itself (the caller's fallback), and the member goes on.
 */
const FREEZE_WAIT_MS = 2000;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { ClassicLevel } = require(workerData.classicLevelPath);
const { location, gte, lt, control, credit: initialCredit, batch, batchBytes, prefix } = workerData;
const db = new ClassicLevel(location, { keyEncoding: 'buffer', valueEncoding: 'buffer', createIfMissing: false, multithreading: true });
let credit = initialCredit;
let stopped = false;
let wake;
parentPort.on('message', (m) => {
  if (m === 'more') credit++;
  else stopped = true;
  if (wake) { const w = wake; wake = undefined; w(); }
});
// [count, then key and value length per record] as u32s, then the bytes of each key
// (without its bucket prefix) and value
function pack(entries) {
  let bytes = 4 + 8 * entries.length;
  for (const [k, v] of entries) bytes += k.length - prefix + v.length;
  const buf = Buffer.allocUnsafeSlow(bytes);
  const lens = new Uint32Array(buf.buffer, buf.byteOffset, 1 + 2 * entries.length);
  lens[0] = entries.length;
  let at = 4 + 8 * entries.length;
  for (let i = 0; i < entries.length; i++) {
    const [k, v] = entries[i];
    lens[1 + 2 * i] = k.length - prefix;
    lens[2 + 2 * i] = v.length;
    at += k.copy(buf, at, prefix);
    at += v.copy(buf, at);
  }
  return buf;
}
async function run() {
  await db.open();
  // the main thread may have given up while the db opened
  if (Atomics.compareExchange(control, 0, ${Control.Opening}, ${Control.Ready}) !== ${Control.Opening}) return;
  parentPort.postMessage('ready');
  Atomics.wait(control, 0, ${Control.Ready});
  if (Atomics.load(control, 0) !== ${Control.Freeze}) return;
  const snapshot = db.snapshot();
  // unless the main thread stopped waiting in the meantime
  if (Atomics.compareExchange(control, 0, ${Control.Freeze}, ${Control.Frozen}) !== ${Control.Freeze}) return snapshot.close();
  Atomics.notify(control, 0);
  const it = db.iterator({ gte: Buffer.from(gte), lt: Buffer.from(lt), snapshot, highWaterMarkBytes: batchBytes, fillCache: false });
  let next = it.nextv(batch);
  try {
    for (;;) {
      const entries = await next;
      if (entries.length === 0) break;
      next = it.nextv(batch);
      const packed = pack(entries);
      while (credit === 0 && !stopped) await new Promise((r) => (wake = r));
      if (stopped) return;
      credit--;
      parentPort.postMessage(packed, [packed.buffer]);
    }
  } finally {
    await next.catch(() => undefined);
    await it.close();
    await snapshot.close();
  }
  parentPort.postMessage('done');
}
// 'closed' once the db handle is released: the main thread then ends the thread
run()
  .catch((err) => parentPort.postMessage({ error: String((err && err.message) || err) }))
  .finally(() => db.close().catch(() => undefined).then(() => parentPort.postMessage('closed')));
`;

type Entries = Array<[Buffer, Buffer]>;

/**
 * A worker reading the records in [gte, lt) of the LevelDB at `location` (open in this
 * process with `multithreading`), keys without their first `prefix` bytes.
 */
export class ScanWorker {
  private readonly queue: Buffer[] = [];
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private frozen = false;
  private closing: Promise<void> | undefined;
  private readonly exited: Promise<void>;
  private ready: (() => void) | undefined;

  private constructor(
    private readonly worker: Worker,
    private readonly control: Int32Array,
  ) {
    worker.on('message', (m: Uint8Array | 'ready' | 'done' | 'closed' | { error: string }) => {
      if (m === 'ready') this.ready?.();
      else if (m === 'done') this.ended = true;
      else if (m === 'closed') void worker.terminate();
      else if (m instanceof Uint8Array) this.queue.push(Buffer.from(m.buffer, m.byteOffset, m.byteLength));
      else this.failure = new Error(`the store's scan worker: ${m.error}`);
      this.notify();
    });
    worker.on('error', (err) => {
      this.failure = err;
      this.notify();
    });
    this.exited = new Promise((resolve) =>
      worker.once('exit', () => {
        if (!this.ended) this.failure ??= new Error("the store's scan worker stopped before the end of its range");
        this.notify();
        resolve();
      }),
    );
  }

  /** Starts a worker on the db at `location`; resolves once it has the db open and waits for freeze(). */
  static async start(location: string, gte: Buffer, lt: Buffer, prefix: number): Promise<ScanWorker> {
    const classicLevelPath = createRequire(import.meta.url).resolve('classic-level');
    const control = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { classicLevelPath, location, gte, lt, control, credit: CREDIT, batch: ITERATOR_BATCH, batchBytes: ITERATOR_BATCH_BYTES, prefix },
    });
    const scan = new ScanWorker(worker, control);
    try {
      await new Promise<void>((resolve, reject) => {
        scan.ready = resolve;
        scan.wake = () => reject(scan.failure ?? new Error("the store's scan worker stopped before it was ready"));
      });
    } catch (err) {
      await scan.close();
      throw err;
    } finally {
      scan.ready = undefined;
      scan.wake = undefined;
    }
    return scan;
  }

  /**
   * Makes the worker take its LevelDB snapshot now, blocking this thread until it has:
   * call it at the instant the main thread's own view is frozen, with no write in flight,
   * and the two see the same store. False when the worker did not answer in time (it
   * then stops, and this reads nothing).
   */
  freeze(): boolean {
    if (Atomics.compareExchange(this.control, 0, Control.Ready, Control.Freeze) !== Control.Ready) return false;
    Atomics.notify(this.control, 0);
    Atomics.wait(this.control, 0, Control.Freeze, FREEZE_WAIT_MS);
    // the worker may take its snapshot just as the wait times out: the exchange decides
    this.frozen = Atomics.compareExchange(this.control, 0, Control.Freeze, Control.Cancelled) === Control.Frozen;
    return this.frozen;
  }

  /** The range's records in key order, a LevelDB read at a time; once, after freeze() returned true. */
  async *batches(): AsyncGenerator<Entries> {
    if (!this.frozen) throw new Error("the store's scan worker was not frozen with the view");
    for (;;) {
      const packed = this.queue.shift();
      if (packed !== undefined) {
        this.worker.postMessage('more');
        yield unpack(packed);
        continue;
      }
      if (this.failure !== undefined) throw this.failure;
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  /** Stops the worker wherever it is and waits until it has let go of the db. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      // before the freeze the worker waits on the control word; after it, for messages
      for (;;) {
        const state = Atomics.load(this.control, 0);
        if (state !== Control.Opening && state !== Control.Ready) break;
        if (Atomics.compareExchange(this.control, 0, state, Control.Cancelled) === state) {
          Atomics.notify(this.control, 0);
          break;
        }
      }
      this.worker.postMessage('stop');
      await this.exited;
    })();
    return this.closing;
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}

/** The records of one packed read, as views of its buffer. */
function unpack(buf: Buffer): Entries {
  const count = buf.readUInt32LE(0);
  const lens = new Uint32Array(buf.buffer, buf.byteOffset, 1 + 2 * count);
  const out: Entries = new Array(count);
  let at = buf.byteOffset + 4 + 8 * count;
  for (let i = 0; i < count; i++) {
    const kl = lens[1 + 2 * i]!;
    const vl = lens[2 + 2 * i]!;
    out[i] = [Buffer.from(buf.buffer, at, kl), Buffer.from(buf.buffer, at + kl, vl)];
    at += kl + vl;
  }
  return out;
}
