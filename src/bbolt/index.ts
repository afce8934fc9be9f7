// go.etcd.io/bbolt 1.3's file format: read etcd's databases and snapshots, write them.
export { BoltFormatError } from './errors.js';
export { BoltFile } from './reader.js';
export { type BucketSource, type Entry, type WriteOptions, type WriteResult, writeBolt } from './writer.js';
export { DEFAULT_PAGE_SIZE } from './format.js';
export { type BucketSize, planStreamLayout, type StreamLayout } from './stream-layout.js';
export { type SequentialOutput, streamBolt, type StreamResult } from './stream-writer.js';
