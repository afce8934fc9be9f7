// An idle member wakes up about as often as etcd's heartbeat, not 100 times a second:
// the nodejs_eventloop_lag_* histogram samples the event loop every 100 ms (prom-client's
// default, 10 ms, was half of an idle member's CPU). A sample is the time between two
// wake-ups, which a timer never makes shorter than its interval, so the smallest sample
// tells the interval, whatever the machine's load.

import { afterAll, expect, it } from 'vitest';
import { cleanup, startMember } from './harness.js';

afterAll(cleanup);

it('samples the event loop once per heartbeat interval', async () => {
  const m = await startMember();
  // let a few samples accumulate since the member enabled the histogram
  await new Promise((r) => setTimeout(r, 1500));
  const text = await fetch(`${m.clientUrl}/metrics`).then((r) => r.text());
  const min = Number(/^nodejs_eventloop_lag_min_seconds (\S+)$/m.exec(text)?.[1]);
  // an empty histogram reports a huge minimum: the upper bound makes sure samples were taken
  expect(min).toBeGreaterThanOrEqual(0.09);
  expect(min).toBeLessThan(60);
});
