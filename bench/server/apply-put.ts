// CPU per put of the apply step alone (RequestApplier.apply on a real MvccStore), for two
// builds' dist/ in one process, alternating round by round: the entry decoded as the
// applier decodes it, applied, and its result waited for when it is a promise; the store's
// batch committed every 1,000 puts as the applier's timer would. 1,000 keys, 256-byte
// values, as goload's puts. The store lives in a temporary directory under /dev/shm.
//
//   npx tsx bench/server/apply-put.ts -- --a base=/tmp/base/dist --b new=dist [--puts 100000] [--rounds 6]

import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { arg } from '../member.js';

const puts = Number(arg('puts', '100000'));
const rounds = Number(arg('rounds', '6'));

interface Side {
  label: string;
  run(): Promise<number>;
}

async function side(spec: string): Promise<Side> {
  const [label, dir] = spec.split('=') as [string, string];
  const load = (m: string) => import(pathToFileURL(path.resolve(dir, m)).href);
  const { MvccStore } = await load('src/mvcc/index.js');
  const { AlarmStore } = await load('src/server/alarms.js');
  const { RequestApplier } = await load('src/server/apply.js');
  const { SimpleTokens } = await load('src/server/auth/simple-token.js');
  const { AuthStore } = await load('src/server/auth/store.js');
  const { Lessor } = await load('src/server/lessor.js');
  const { Membership } = await load('src/server/membership.js');
  const { uint64 } = await load('src/server/pb.js');
  const { decodeEntryRequest, encodeRaftRequest } = await load('src/server/raft-request.js');
  const { V2Store } = await load('src/server/v2store/index.js');
  const silent = pino({ level: 'silent' });
  const value = Buffer.alloc(256, 0x61);
  const entries = Array.from({ length: 1000 }, (_, i) =>
    encodeRaftRequest({ ID: uint64(BigInt(i + 1)) }, { kind: 'put', body: { key: Buffer.from(`key-${i}`), value } }),
  );
  return {
    label,
    async run(): Promise<number> {
      const tmp = mkdtempSync('/dev/shm/apply-put-');
      const store = await MvccStore.open({ dir: tmp });
      const auth = new AuthStore(() => store, new SimpleTokens(60_000), silent);
      const applier = new RequestApplier({
        store: () => store, lessor: new Lessor({ minTtl: 1, now: () => Date.now() }), membership: new Membership(1n, 1n),
        alarms: new AlarmStore(), auth, v2store: new V2Store(), log: silent, storeIndexAtOpen: () => 0, onLeaseRevoked: () => undefined,
      });
      try {
        const start = process.cpuUsage();
        for (let i = 1; i <= puts; i++) {
          const r = applier.apply(decodeEntryRequest(entries[i % entries.length]!), i);
          if (r instanceof Promise) await r;
          if (i % 1000 === 0) {
            store.publish();
            await store.commit();
          }
        }
        await store.flushed();
        const used = process.cpuUsage(start);
        return (used.user + used.system) / puts;
      } finally {
        await store.close();
        rmSync(tmp, { recursive: true, force: true });
      }
    },
  };
}

const a = await side(arg('a', ''));
const b = await side(arg('b', ''));
const results = new Map<string, number[]>([[a.label, []], [b.label, []]]);
for (let round = 0; round < rounds; round++) {
  for (const s of round % 2 ? [b, a] : [a, b]) {
    const us = await s.run();
    results.get(s.label)!.push(us);
    console.log(`round ${round} ${s.label}: ${us.toFixed(2)} µs of CPU per put`);
  }
}
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
for (const [label, us] of results) console.log(`${label}: median ${median(us).toFixed(2)} µs per put (${us.map((u) => u.toFixed(1)).join(', ')})`);
