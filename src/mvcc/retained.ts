// What keeping a Buffer costs: the whole ArrayBuffer behind it, not its own length. A
// view into a record keeps the record; a slice of Node's 8 KB pool keeps the slab. The
// value cache and the watch history count this against their bounds, so a bound holds
// however the buffers they keep were cut. Views sharing one ArrayBuffer across entries
// are each charged all of it (an upper bound): the store's records have buffers of
// their own (codec.ts), and LevelDB's reads do too, so in practice it is exact.

/** Bytes of the distinct ArrayBuffers behind `bufs`. */
export function retainedBytes(...bufs: Buffer[]): number {
  let total = 0;
  for (let i = 0; i < bufs.length; i++) {
    const ab = bufs[i]!.buffer;
    let seen = false;
    for (let j = 0; j < i && !seen; j++) seen = bufs[j]!.buffer === ab;
    if (!seen) total += ab.byteLength;
  }
  return total;
}
