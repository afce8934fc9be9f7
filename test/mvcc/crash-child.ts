// Child process for crash.test.ts: applies a deterministic stream of raft entries to a
// store as fast as it can, committing every 50, until it is killed with SIGKILL.
// Entry i: put k{i%37}=v{i}; every third entry is a txn that also puts m{i%11}=w{i}.

import { MvccStore } from '../../src/mvcc/index.js';

const dir = process.argv[2]!;
const store = await MvccStore.open({ dir });
let i = store.consistentIndex;
const b = (s: string) => Buffer.from(s);
for (;;) {
  for (let n = 0; n < 50; n++) {
    i++;
    const put = { key: b(`k${i % 37}`), value: b(`v${i}`), lease: 0n };
    if (i % 3 === 0) {
      await store.txn({ compare: [], success: [{ put }, { put: { key: b(`m${i % 11}`), value: b(`w${i}`), lease: 0n } }], failure: [] }, i);
    } else {
      await store.put(put, i);
    }
  }
  await store.commit();
  process.stdout.write(`${i}\n`);
}
