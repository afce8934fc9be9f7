// Child process for write-fault.test.ts: writes a bbolt file of 20 000 keys × 1 KiB
// (about 24 MB), run under a file-size limit smaller than that, so the disk refuses a
// write part way (EFBIG; Node ignores SIGXFSZ). Prints the error writeBolt rejects with.

import { type BucketSource, writeBolt } from '../../src/bbolt/index.js';

const [file] = process.argv.slice(2) as [string];
async function* entries(): AsyncGenerator<Array<[Buffer, Buffer]>> {
  for (let b = 0; b < 200; b++) {
    yield Array.from({ length: 100 }, (_, i): [Buffer, Buffer] => [Buffer.from(`k${String(b * 100 + i).padStart(6, '0')}`), Buffer.alloc(1024, i)]);
  }
}
async function* buckets(): AsyncGenerator<BucketSource> {
  yield { name: Buffer.from('key'), entries: entries() };
}
try {
  await writeBolt(file, buckets());
  console.log('written');
} catch (err) {
  console.log(`rejected: ${(err as NodeJS.ErrnoException).code} ${(err as Error).message}`);
}
