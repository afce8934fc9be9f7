// The SHA-256 that ends a backup's stream, computed in a thread of its own (hash-thread.ts
// starts it from the export's worker): hashing 350 MB takes ~0.3 s of CPU, and in the
// export's worker it made that thread the save's bottleneck (bench/snapshot/README.md).
// Each chunk comes and goes back without a copy (a transferred ArrayBuffer).

import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import type { FromHasher, ToHasher } from './export-protocol.js';

const port = parentPort!;
const sha = createHash('sha256');

port.on('message', (m: ToHasher) => {
  if (m.type === 'update') {
    for (let i = 0; i < m.blobs.length; i += 2) sha.update(m.frames.subarray(m.blobs[i], m.blobs[i]! + m.blobs[i + 1]!));
    port.postMessage({ type: 'hashed', frames: m.frames } satisfies FromHasher, [m.frames.buffer as ArrayBuffer]);
    return;
  }
  port.postMessage({ type: 'digest', digest: sha.digest() } satisfies FromHasher);
  port.close();
});
