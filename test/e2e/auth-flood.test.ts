// A thousand failed logins in flight must not stop a member answering everyone else.
// etcd 3.4 has no rate limit on Authenticate: its bcrypt runs in goroutines that Go spreads
// over the cores and preempts, so other requests keep being served while the flood burns
// CPU. etcd-ts keeps bcrypt off its event loop for the same effect (auth/bcrypt-pool.ts).
// The test asserts order, not speed: a client's puts and gets all come back while most of
// the failed logins are still waiting for their answer.

import { afterAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { AuthedClient } from './client.js';
import { cleanup, ctl, startMember, stopMember } from './harness.js';

afterAll(cleanup);

const FAILED_LOGINS = 1000;
const ROUNDS = 20;

describe('Authenticate under a flood of wrong passwords', () => {
  it('leaves the member answering puts and gets', async () => {
    // the default --bcrypt-cost (10): every wrong password costs a full bcrypt
    const m = await startMember({ name: 'flood' });
    await ctl(m.clientUrl, ['user', 'add', 'root:rootpw']);
    await ctl(m.clientUrl, ['auth', 'enable']);
    const client = new AuthedClient(m.clientUrl);
    const flooder = new AuthedClient(m.clientUrl);
    const token = await client.authenticate('root', 'rootpw');

    let failed = 0;
    const errors = new Set<string>();
    const flood = Array.from({ length: FAILED_LOGINS }, (_, i) =>
      flooder.authenticate('root', `wrong-${i}`).then(
        () => errors.add('a wrong password was accepted'),
        (err: grpc.ServiceError) => {
          failed++;
          errors.add(`${err.code} ${err.details}`);
        },
      ),
    );

    for (let i = 0; i < ROUNDS; i++) {
      await client.put(token, `k${i}`, `v${i}`);
      expect(await client.get(token, `k${i}`)).toBe(`v${i}`);
    }
    // every answer above arrived while the flood was still being worked through
    expect(failed).toBeLessThan(FAILED_LOGINS / 2);
    // the failures that did come back are etcd's
    await Promise.race([Promise.all(flood.slice(0, 1)), new Promise((r) => setTimeout(r, 60_000))]);
    expect([...errors]).toEqual([`${grpc.status.INVALID_ARGUMENT} etcdserver: authentication failed, invalid user ID or password`]);

    flooder.close();
    client.close();
    await stopMember(m, 'SIGKILL');
  }, 180_000);
});
