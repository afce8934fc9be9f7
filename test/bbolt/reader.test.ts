// BoltFile against files real etcd 3.4.23 wrote (live, after defrag, with overflow
// pages), compared with what real bbolt reads; and damaged copies of them, which must
// give a BoltFormatError naming the file and the page while bbolt also rejects them.

import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BoltFile, BoltFormatError } from '../../src/bbolt/index.js';
import { branchElement, leafElement } from '../../src/bbolt/elements.js';
import { BUCKET_LEAF_FLAG, PAGE_HEADER_SIZE, PageFlag, readPageHeader } from '../../src/bbolt/format.js';
import { cleanup, ctl, startMember, stopMember, tempDir } from '../e2e/harness.js';
import { boltCheck, boltDump, ourDump } from './real-bolt.js';
import { applyWorkload } from './workload.js';

const PAGE = 4096;

interface PageInfo {
  id: number;
  flags: number;
  count: number;
  overflow: number;
}

/** The pages reachable from the newer meta page, in id order: damage to a free page harms no reader. */
function pagesOf(buf: Buffer): PageInfo[] {
  const newer = buf.readBigUInt64LE(PAGE + PAGE_HEADER_SIZE + 48) > buf.readBigUInt64LE(PAGE_HEADER_SIZE + 48) ? PAGE : 0;
  const out: PageInfo[] = [];
  const fail = (d: string): never => {
    throw new Error(d);
  };
  const visit = (id: number): void => {
    const page = buf.subarray(id * PAGE);
    const h = readPageHeader(page);
    out.push({ id, flags: h.flags, count: h.count, overflow: h.overflow });
    for (let i = 0; i < h.count; i++) {
      if (h.flags === PageFlag.branch) visit(Number(branchElement(page, i, fail).child));
      else {
        const e = leafElement(page, i, fail);
        if (e.flags & BUCKET_LEAF_FLAG && e.value.readBigUInt64LE(0) !== 0n) visit(Number(e.value.readBigUInt64LE(0)));
      }
    }
  };
  visit(Number(buf.readBigUInt64LE(newer + PAGE_HEADER_SIZE + 16)));
  return out.sort((a, b) => a.id - b.id);
}

async function readAll(file: string): Promise<void> {
  const f = await BoltFile.open(file);
  try {
    for (const name of f.bucketNames()) for await (const _ of f.entries(name));
  } finally {
    await f.close();
  }
}

async function formatError(file: string): Promise<BoltFormatError> {
  try {
    await readAll(file);
  } catch (err) {
    if (err instanceof BoltFormatError) return err;
    throw err;
  }
  throw new Error(`${file} was read without an error`);
}

describe('BoltFile on databases real etcd 3.4.23 wrote', () => {
  let dir: string;
  let live: string;
  let defragged: string;

  beforeAll(async () => {
    dir = tempDir('etcd-ts-bbolt-');
    const dataDir = path.join(dir, 'etcd');
    let m = await startMember({ binary: 'etcd', dataDir });
    await applyWorkload(m.clientUrl, { keys: 3000, bigValues: 8 });
    await stopMember(m);
    live = path.join(dir, 'live.db');
    copyFileSync(path.join(dataDir, 'member/snap/db'), live);
    m = await startMember({ binary: 'etcd', dataDir });
    await ctl(m.clientUrl, ['defrag']);
    await stopMember(m);
    defragged = path.join(dir, 'defrag.db');
    copyFileSync(path.join(dataDir, 'member/snap/db'), defragged);
  });
  afterAll(cleanup);

  it('has the branch, leaf and overflow pages this test is about', () => {
    for (const file of [live, defragged]) {
      const pages = pagesOf(readFileSync(file));
      expect(pages.some((p) => p.flags === PageFlag.branch)).toBe(true);
      expect(pages.some((p) => p.flags === PageFlag.leaf && p.overflow > 0)).toBe(true);
    }
  });

  it('reads every bucket, key and value as real bbolt does, live and after defrag', async () => {
    for (const file of [live, defragged]) {
      const ours = await ourDump(file);
      expect(ours).toBe(await boltDump(file));
      expect(ours).toContain(`B ${Buffer.from('key').toString('hex')}\n`);
      expect(ours).toContain(`B ${Buffer.from('lease').toString('hex')}\n`);
    }
    const f = await BoltFile.open(defragged);
    expect(f.pageSize).toBe(PAGE);
    expect(f.bucketNames().map(String)).toEqual(['alarm', 'auth', 'authRoles', 'authUsers', 'cluster', 'key', 'lease', 'members', 'members_removed', 'meta']);
    await f.close();
  });

  it('falls back to the older meta page when the newer one is damaged, as bbolt does', async () => {
    const buf = readFileSync(live);
    const t0 = buf.readBigUInt64LE(PAGE_HEADER_SIZE + 48);
    const t1 = buf.readBigUInt64LE(PAGE + PAGE_HEADER_SIZE + 48);
    const newer = t1 > t0 ? 1 : 0;
    buf[newer * PAGE + PAGE_HEADER_SIZE + 20] ^= 0x01; // inside the root pgid: checksum now wrong
    const file = path.join(dir, 'one-meta.db');
    writeFileSync(file, buf);
    const f = await BoltFile.open(file);
    expect(f.txid).toBe(newer ? t0 : t1);
    await f.close();
    expect(await ourDump(file)).toBe(await boltDump(file));
  });

  type Damage = { name: string; expect: RegExp; page?: (pages: PageInfo[]) => number; apply(buf: Buffer, pages: PageInfo[]): Buffer };
  const firstBranch = (pages: PageInfo[]) => pages.find((p) => p.flags === PageFlag.branch)!.id;
  const firstLeaf = (pages: PageInfo[]) => pages.find((p) => p.flags === PageFlag.leaf && p.count > 0)!.id;
  const damages: Damage[] = [
    {
      name: 'both meta pages with a bad magic',
      expect: /no valid meta page \(page 0: bad magic .*; page 1: bad magic/,
      apply: (buf) => {
        buf.writeUInt32LE(0xdeadbeef, PAGE_HEADER_SIZE);
        buf.writeUInt32LE(0xdeadbeef, PAGE + PAGE_HEADER_SIZE);
        return buf;
      },
    },
    {
      name: 'both meta checksums wrong',
      expect: /page 0: checksum mismatch; page 1: checksum mismatch/,
      apply: (buf) => {
        buf[PAGE_HEADER_SIZE + 56] ^= 0x80;
        buf[PAGE + PAGE_HEADER_SIZE + 56] ^= 0x80;
        return buf;
      },
    },
    {
      name: 'the file cut in half',
      expect: /truncated/,
      apply: (buf) => buf.subarray(0, Math.floor(buf.length / 2 / PAGE) * PAGE),
    },
    {
      name: 'a branch pointing beyond the file',
      expect: /points outside the database's pages/,
      page: () => 1_000_000,
      apply: (buf, pages) => {
        buf.writeBigUInt64LE(1_000_000n, firstBranch(pages) * PAGE + PAGE_HEADER_SIZE + 8);
        return buf;
      },
    },
    {
      name: 'a branch pointing at itself (a cycle)',
      expect: /reaches this page a second time/,
      page: firstBranch,
      apply: (buf, pages) => {
        const id = firstBranch(pages);
        buf.writeBigUInt64LE(BigInt(id), id * PAGE + PAGE_HEADER_SIZE + 8);
        return buf;
      },
    },
    {
      name: 'a leaf page flagged as a freelist',
      expect: /expected leaf, found freelist/,
      page: firstLeaf,
      apply: (buf, pages) => {
        buf.writeUInt16LE(PageFlag.freelist, firstLeaf(pages) * PAGE + 8);
        return buf;
      },
    },
    {
      name: 'a leaf key running off its page',
      expect: /run past the page/,
      page: firstLeaf,
      apply: (buf, pages) => {
        buf.writeUInt32LE(0x7fffffff, firstLeaf(pages) * PAGE + PAGE_HEADER_SIZE + 8);
        return buf;
      },
    },
  ];

  for (const d of damages) {
    it(`rejects ${d.name}, naming the file and the page; bbolt rejects it too`, async () => {
      const buf = readFileSync(live);
      const pages = pagesOf(buf);
      const file = path.join(dir, `damaged-${d.name.replace(/\W+/g, '-')}.db`);
      writeFileSync(file, d.apply(buf, pages));
      const err = await formatError(file);
      expect(err.message).toMatch(d.expect);
      expect(err.message.startsWith(`${file}: `)).toBe(true);
      if (d.page) expect(err.page).toBe(BigInt(d.page(pages)));
      expect((await boltCheck(file)).ok).toBe(false);
    });
  }
});
