// The thread that hashes a streamed backup: the blobs it is given, in order, and nothing
// else; each chunk back intact; and a thread that stops fails whatever waits on it.

import { createHash, randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { HashThread } from '../../../src/server/backup/hash-thread.js';

interface Chunk {
  frames: Buffer;
  /** (offset, length) pairs */
  blobs: number[];
  /** the frames as they were, and the blobs' bytes */
  copy: Buffer;
  hashed: Buffer;
}

/** `n` random bytes with blobs at `blobs`: the bytes between them must not be hashed. */
function chunk(n: number, blobs: number[]): Chunk {
  const frames = Buffer.allocUnsafeSlow(n);
  randomBytes(n).copy(frames);
  const parts: Buffer[] = [];
  for (let i = 0; i < blobs.length; i += 2) parts.push(frames.subarray(blobs[i], blobs[i]! + blobs[i + 1]!));
  return { frames, blobs, copy: Buffer.from(frames), hashed: Buffer.concat(parts) };
}

it('hashes the blobs of each chunk in order, and hands each chunk back as it was', async () => {
  const hasher = new HashThread();
  try {
    const chunks = [chunk(4096, [5, 1000, 1100, 2000]), chunk(8192, [0, 8192]), chunk(100, [10, 1])];
    const back = await Promise.all(chunks.map((c) => hasher.update(c.frames, c.blobs)));
    // handed over, not copied: the sender's view was emptied
    expect(chunks[0]!.frames.length).toBe(0);
    expect(back.map((b, i) => b.equals(chunks[i]!.copy))).toEqual([true, true, true]);
    const expected = createHash('sha256').update(Buffer.concat(chunks.map((c) => c.hashed))).digest();
    expect(Buffer.from(await hasher.digest()).equals(expected)).toBe(true);
  } finally {
    await hasher.close();
  }
});

it('a thread that stops fails the updates and the digest that wait on it, and says so on `failed`', async () => {
  const hasher = new HashThread();
  const whole = chunk(1024, [0, 1024]);
  expect((await hasher.update(whole.frames, whole.blobs)).equals(whole.copy)).toBe(true);
  // still in the thread's queue (or being hashed) when it stops
  const big = chunk(64 << 20, [0, 64 << 20]);
  const pending = hasher.update(big.frames, big.blobs);
  await hasher.close();
  await expect(pending).rejects.toThrow('the hash thread stopped');
  await expect(hasher.failed).rejects.toThrow('the hash thread stopped');
  const after = chunk(1024, [0, 1024]);
  await expect(hasher.update(after.frames, after.blobs)).rejects.toThrow('the hash thread stopped');
  await expect(hasher.digest()).rejects.toThrow('the hash thread stopped');
});
