// The worker thread of an export (export-thread.ts): opens the member's LevelDB, which it
// shares with the member's thread, takes its snapshot at the moment the member's view
// freezes, and builds etcd's bbolt file from it: written to a file, or sent back framed
// as the client's stream carries it, with its checksum.
//
// Why a thread: reading a million records through classic-level makes a Buffer of each
// value on the thread that reads, and that and the pages' encoding kept the member's
// thread busy three quarters of a save (bench/snapshot/README.md). Here the member's
// thread only writes the frames to the client, and serves clients and peers meanwhile.

import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { ClassicLevel } from 'classic-level';
import { bucketViewOf, type FrozenPoint } from '../../mvcc/index.js';
import type { StreamLayout } from '../../bbolt/index.js';
import { type SnapshotFrames, snapshotFrames } from '../api/snapshot-frames.js';
import { type ClusterState, streamEtcdBackend, writeEtcdBackend } from './etcd-db.js';
import { CHUNK_BYTES, CHUNKS_AHEAD, type ExportWorkerData, type FromWorker, SnapshotState, type ToWorker } from './export-protocol.js';
import { HashThread } from './hash-thread.js';

const port = parentPort!;
const { location, handshake } = workerData as ExportWorkerData;
const state = new Int32Array(handshake);
const db = new ClassicLevel<Buffer, Buffer>(location, { keyEncoding: 'buffer', valueEncoding: 'buffer', multithreading: true });
/** The export thread's nice value: below the member's thread, above an idle one. */
const EXPORT_NICE = 10;
let snapshot: ReturnType<typeof db.snapshot> | undefined;
const aborted = new AbortController();
let running: Promise<void> | undefined;

/** Chunks sent and not yet taken, and who waits for one to be. */
let ahead = 0;
let onTaken: (() => void) | undefined;

function post(m: FromWorker, transfer?: ArrayBuffer[]): void {
  port.postMessage(m, transfer);
}

port.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'snapshot':
      takeSnapshot();
      return;
    case 'stream':
      running = stream(m.layout, m.point, m.cluster, m.hashed);
      return;
    case 'write':
      running = write(m.path, m.point, m.cluster);
      return;
    case 'taken':
      ahead--;
      onTaken?.();
      return;
    case 'close':
      void close();
      return;
  }
});

function takeSnapshot(): void {
  const taken = db.snapshot();
  // the member's thread waits for this, unless it gave up waiting
  const before = Atomics.compareExchange(state, 0, SnapshotState.waiting, SnapshotState.taken);
  Atomics.notify(state, 0);
  if (before === SnapshotState.waiting) snapshot = taken;
  else void taken.close();
  // only now: the member's thread, blocked until the snapshot is taken, must not wait for a thread that yields to everything else
  lowerPriority();
}

async function write(path: string, point: FrozenPoint, cluster: ClusterState): Promise<void> {
  try {
    if (snapshot === undefined) throw new Error('the export has no snapshot');
    post({ type: 'written', result: await writeEtcdBackend(path, bucketViewOf(db, snapshot, point), cluster, aborted.signal) });
  } catch (err) {
    post({ type: 'failed', message: (err as Error).message });
  }
}

async function stream(layout: StreamLayout, point: FrozenPoint, cluster: ClusterState, hashed: boolean): Promise<void> {
  let hasher: HashThread | undefined;
  try {
    if (snapshot === undefined) throw new Error('the export has no snapshot');
    // inside the try: a thread that cannot start fails the export, which says so
    hasher = hashed ? new HashThread() : undefined;
    const framer = new Framer(layout.size, hasher);
    const result = await streamEtcdBackend(layout, bucketViewOf(db, snapshot, point), cluster, (bufs) => framer.push(bufs), aborted.signal);
    post({ type: 'done', result, checksum: await framer.checksum() });
  } catch (err) {
    post({ type: 'failed', message: (err as Error).message });
  } finally {
    await hasher?.close();
  }
}

/**
 * Copies the file's bytes into the blobs of the stream's messages as snapshotFrames lays
 * them out, CHUNK_BYTES of the file at a time, and sends each batch once it is full: to
 * the hash thread if there is one, then on to the member's thread, which writes it out.
 */
class Framer {
  /** file bytes sent on */
  private sent = 0;
  /** settles once every chunk sent so far is hashed and with the member's thread */
  private forwarded = Promise.resolve();
  private frames: SnapshotFrames | undefined;
  /** the blob being filled, and its bytes filled */
  private blob = 0;
  private filled = 0;

  constructor(
    private readonly size: number,
    private readonly hasher: HashThread | undefined,
  ) {}

  async push(bufs: Buffer[]): Promise<void> {
    for (const b of bufs) {
      for (let at = 0; at < b.length; ) {
        const frames = this.frames ?? this.next();
        const blob = frames.responses[this.blob]!.blob;
        const n = b.copy(blob, this.filled, at);
        at += n;
        this.filled += n;
        if (this.filled < blob.length) continue;
        this.blob++;
        this.filled = 0;
        if (this.blob === frames.responses.length) await this.send(frames);
      }
    }
  }

  /** The file's checksum (undefined without a hash thread), once all of it is sent. */
  async checksum(): Promise<Uint8Array | undefined> {
    if (this.sent !== this.size || this.frames !== undefined) throw new Error(`the backup was ${this.sent} bytes, not the ${this.size} announced`);
    await this.forwarded;
    return this.hasher?.digest();
  }

  private next(): SnapshotFrames {
    if (this.sent === this.size) throw new Error(`the backup runs past the ${this.size} bytes announced`);
    this.frames = snapshotFrames(this.size, this.sent, Math.min(CHUNK_BYTES, this.size - this.sent));
    return this.frames;
  }

  /** Hands `frames` to the hash thread (if there is one), and on to the member's thread once hashed, in order. */
  private async send(frames: SnapshotFrames): Promise<void> {
    this.frames = undefined;
    this.blob = 0;
    const from = this.sent;
    this.sent += frames.bytes;
    const hashed =
      this.hasher?.update(
        frames.frames,
        frames.responses.flatMap(({ blob }) => [blob.byteOffset - frames.frames.byteOffset, blob.length]),
      ) ?? Promise.resolve(frames.frames);
    // awaited in turn below; a rejection before its turn is not an unhandled one
    hashed.catch(() => undefined);
    ahead++;
    this.forwarded = this.forwarded.then(async () => {
      const bytes = await hashed;
      post({ type: 'frames', frames: bytes, messageSizes: frames.messageSizes, from, bytes: frames.bytes }, [bytes.buffer as ArrayBuffer]);
    });
    // awaited by checksum(); a failure meanwhile is the hash thread's, which `failed` reports
    this.forwarded.catch(() => undefined);
    const taken = (): Promise<void> => new Promise<void>((resolve) => (onTaken = resolve));
    while (ahead >= CHUNKS_AHEAD && !aborted.signal.aborted) await (this.hasher === undefined ? taken() : Promise.race([taken(), this.hasher.failed]));
  }
}

async function close(): Promise<void> {
  aborted.abort();
  onTaken?.();
  await running;
  await snapshot?.close();
  await db.close();
  port.close();
}

db.open().then(
  () => post({ type: 'open' }),
  (err: Error) => {
    post({ type: 'failed', message: `cannot open the store at ${location}: ${err.message}` });
    port.close();
  },
);

/**
 * Runs this thread at a lower priority than the member's (Linux: the thread's own nice
 * value, by its thread id): on a busy machine the export then waits for the CPU, not the
 * clients and peers the member's thread serves. Elsewhere the export runs as it is.
 */
function lowerPriority(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    setPriority(tid, EXPORT_NICE);
  } catch {
    // not Linux, or no /proc: the export competes as an equal
  }
}
