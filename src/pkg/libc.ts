// The C library, through koffi (a maintained FFI with prebuilt binaries in its npm
// package), for the few calls Node does not expose: systemd's notify datagram
// (server/systemd.ts), glibc's malloc_trim (pkg/native-heap.ts) and, for the debug-only
// memory report, its mallinfo2 (pkg/memory-report.ts). Loaded on first use only, so a
// member that needs none of them never loads the FFI.

import { createRequire } from 'node:module';
import type Koffi from 'koffi';

export interface Libc {
  readonly koffi: typeof Koffi;
  readonly lib: Koffi.IKoffiLib;
}

let libc: Libc | undefined;

/** libc.so.6, loaded once; throws where there is none (a musl or non-Linux system). */
export function loadLibc(): Libc {
  if (libc === undefined) {
    const koffi = createRequire(import.meta.url)('koffi') as typeof Koffi;
    libc = { koffi, lib: koffi.load('libc.so.6') };
  }
  return libc;
}
