// What the strict wire check costs per request: protobufjs' decode alone against the
// check plus the decode (what the gRPC server runs), for the requests of the hot path
// (Put with etcd's benchmark sizes, Range, a small Txn). A few seconds on one core.
//
//   npx tsc -p tsconfig.json && node dist/bench/server/decode.js

import { compileWireCheck } from '../../src/server/wire-check.js';
import { type } from '../../src/server/pb.js';

interface Sample {
  name: string;
  type: string;
  request: object;
}

const samples: Sample[] = [
  { name: 'Put 8 B key, 256 B value', type: 'PutRequest', request: { key: Buffer.alloc(8, 0x6b), value: Buffer.alloc(256, 0x76) } },
  { name: 'Range one key, serializable', type: 'RangeRequest', request: { key: Buffer.from('foo/bar/baz'), serializable: true } },
  {
    name: 'Range prefix, limit, sort',
    type: 'RangeRequest',
    request: { key: Buffer.from('/registry/pods/'), range_end: Buffer.from('/registry/pods0'), limit: 500, sort_order: 1, sort_target: 3, revision: 123456 },
  },
  {
    name: 'Txn compare + put (kube-apiserver update)',
    type: 'TxnRequest',
    request: {
      compare: [{ key: Buffer.from('/registry/pods/default/p1'), target: 2, result: 0, mod_revision: 123456 }],
      success: [{ request_put: { key: Buffer.from('/registry/pods/default/p1'), value: Buffer.alloc(1024, 0x61), lease: 0 } }],
      failure: [{ request_range: { key: Buffer.from('/registry/pods/default/p1') } }],
    },
  },
];

/** ns per call of `fn`, the best of five rounds of `n` calls. */
function measure(fn: () => void, n: number): number {
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    best = Math.min(best, Number(process.hrtime.bigint() - start) / n);
  }
  return best;
}

const N = 200_000;
console.log('request'.padEnd(44), 'decode ns', 'check ns', 'check+decode ns', 'overhead');
for (const s of samples) {
  const t = type(`etcdserverpb.${s.type}`);
  const bytes = Buffer.from(t.encode(t.fromObject(s.request)).finish());
  const check = compileWireCheck(t);
  measure(() => t.decode(bytes), N); // warm both paths up
  measure(() => check(bytes), N);
  const decode = measure(() => t.decode(bytes), N);
  const scan = measure(() => check(bytes), N);
  const both = measure(() => {
    check(bytes);
    t.decode(bytes);
  }, N);
  console.log(
    s.name.padEnd(44),
    decode.toFixed(0).padStart(9),
    scan.toFixed(0).padStart(8),
    both.toFixed(0).padStart(15),
    `${(((both - decode) / decode) * 100).toFixed(0)}%`.padStart(8),
  );
}
