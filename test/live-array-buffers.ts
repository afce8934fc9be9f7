// ArrayBuffer bytes a test's objects still keep (records, values, raft entries live
// there, not in the JS heap), for tests that hold memory to a bound.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * ArrayBuffer bytes still reachable. Dead backing stores are freed after the GC (and
 * buffers LevelDB handed over by finalizers), so a second collection follows a turn of
 * the event loop.
 */
export async function liveArrayBuffers(): Promise<number> {
  gc();
  await new Promise((resolve) => setTimeout(resolve, 100));
  gc();
  return process.memoryUsage().arrayBuffers;
}
