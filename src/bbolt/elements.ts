// The element table of a branch or leaf page (page.go's branchPageElement and
// leafPageElement): `count` 16-byte entries after the page header, each pointing with
// `pos` (relative to the entry itself) at its key and value bytes further in the page.

import { ELEMENT_SIZE, PAGE_HEADER_SIZE } from './format.js';

export type Fail = (detail: string) => never;

export interface LeafElement {
  flags: number;
  key: Buffer;
  value: Buffer;
}

export interface BranchElement {
  key: Buffer;
  child: bigint;
}

/** Checks that `count` elements fit in the page before any of them is read. */
export function checkElementTable(page: Buffer, count: number, fail: Fail): void {
  if (PAGE_HEADER_SIZE + count * ELEMENT_SIZE > page.length) {
    fail(`${count} elements need ${PAGE_HEADER_SIZE + count * ELEMENT_SIZE} bytes, the page has ${page.length}`);
  }
}

function slice(page: Buffer, elem: number, pos: number, ksize: number, vsize: number, i: number, fail: Fail): [Buffer, Buffer] {
  const start = elem + pos;
  const end = start + ksize + vsize;
  if (ksize === 0) fail(`element ${i} has an empty key (bbolt never writes one)`);
  if (end > page.length) fail(`element ${i}'s key and value [${start}, ${end}) run past the page's ${page.length} bytes`);
  return [page.subarray(start, start + ksize), page.subarray(start + ksize, end)];
}

export function leafElement(page: Buffer, i: number, fail: Fail): LeafElement {
  const at = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
  const [key, value] = slice(page, at, page.readUInt32LE(at + 4), page.readUInt32LE(at + 8), page.readUInt32LE(at + 12), i, fail);
  return { flags: page.readUInt32LE(at), key, value };
}

/** A leaf element's key and value, without its flags (leafFlags) or an element object: for a page's every element. */
export function leafPair(page: Buffer, i: number, fail: Fail): [Buffer, Buffer] {
  const at = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
  return slice(page, at, page.readUInt32LE(at + 4), page.readUInt32LE(at + 8), page.readUInt32LE(at + 12), i, fail);
}

export function leafFlags(page: Buffer, i: number): number {
  return page.readUInt32LE(PAGE_HEADER_SIZE + i * ELEMENT_SIZE);
}

export function branchElement(page: Buffer, i: number, fail: Fail): BranchElement {
  const at = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
  const [key] = slice(page, at, page.readUInt32LE(at), page.readUInt32LE(at + 4), 0, i, fail);
  return { key, child: page.readBigUInt64LE(at + 8) };
}
