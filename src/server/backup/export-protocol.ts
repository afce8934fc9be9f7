// What export-thread.ts (the member's thread) and export-worker.ts (the worker thread
// that reads the store, builds etcd's bbolt file and frames it for the client's stream)
// say to each other, and what the export's worker and the hash-worker.ts it starts say.

import type { StreamLayout, StreamResult, WriteResult } from '../../bbolt/index.js';
import type { FrozenPoint } from '../../mvcc/index.js';
import type { ClusterState } from './etcd-db.js';

export interface ExportWorkerData {
  /** the store's LevelDB, opened there with classic-level's multithreading */
  readonly location: string;
  /** one Int32: the snapshot handshake (SnapshotState) */
  readonly handshake: SharedArrayBuffer;
}

/** The handshake's states: the member's thread waits, blocked, while the worker takes its snapshot. */
export const SnapshotState = { waiting: 0, taken: 1, abandoned: 2 } as const;

/** Bytes of the file in one message to the member's thread: what its thread gives the client in one write. */
export const CHUNK_BYTES = 1 << 20;
/** Chunks being hashed or sent and not yet taken by the client's stream; the worker waits beyond it. */
export const CHUNKS_AHEAD = 8;

export type ToWorker =
  /** take the snapshot now (the member's thread is blocked in the handshake) */
  | { readonly type: 'snapshot' }
  /** send etcd's backend database in `layout` as the snapshot stream's frames (streamEtcdBackend), with its SHA-256 when `hashed` */
  | { readonly type: 'stream'; readonly layout: StreamLayout; readonly point: FrozenPoint; readonly cluster: ClusterState; readonly hashed: boolean }
  /** write etcd's backend database as a new file at `path` (writeEtcdBackend) */
  | { readonly type: 'write'; readonly path: string; readonly point: FrozenPoint; readonly cluster: ClusterState }
  /** one more chunk was taken */
  | { readonly type: 'taken' }
  /** stop what runs, release the snapshot and the store, and end */
  | { readonly type: 'close' };

export type FromWorker =
  | { readonly type: 'open' }
  /** file bytes [from, from + bytes) as snapshotFrames lays them out, filled */
  | { readonly type: 'frames'; readonly frames: Uint8Array; readonly messageSizes: readonly number[]; readonly from: number; readonly bytes: number }
  /** after the last frames: the SHA-256 of the file, when asked for */
  | { readonly type: 'done'; readonly result: StreamResult; readonly checksum: Uint8Array | undefined }
  | { readonly type: 'written'; readonly result: WriteResult }
  | { readonly type: 'failed'; readonly message: string };

/** To the hash thread: each chunk of frames in the file's order, then the end. */
export type ToHasher =
  /** hash the blobs of `frames` ((offset, length) pairs in `blobs`) and hand `frames` back */
  | { readonly type: 'update'; readonly frames: Uint8Array; readonly blobs: readonly number[] }
  | { readonly type: 'digest' };

export type FromHasher =
  /** the oldest update's frames, hashed */
  | { readonly type: 'hashed'; readonly frames: Uint8Array }
  /** the SHA-256 of everything hashed; the thread then ends */
  | { readonly type: 'digest'; readonly digest: Uint8Array };
