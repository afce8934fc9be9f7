// --max-concurrent-streams on the JSON gateway, as etcd's TestV3Curl_MaxStreams_* expect:
// the gateway's requests share one stream budget (etcd's gateway is one gRPC client
// connection), so with the limit taken by open watches a further request waits, and is
// answered once a watch ends.

import { afterAll, expect, it } from 'vitest';
import { cleanup, ctl, startMember } from './harness.js';

afterAll(cleanup);

interface OpenWatch {
  /** resolves with each line the watch streams, in order */
  nextLine(): Promise<string>;
  close(): void;
}

async function openWatch(endpoint: string, key: string): Promise<OpenWatch> {
  const abort = new AbortController();
  const res = await fetch(`${endpoint}/v3/watch`, {
    method: 'POST',
    body: JSON.stringify({ create_request: { key: Buffer.from(key).toString('base64') } }),
    signal: abort.signal,
  });
  const reader = res.body!.getReader();
  let buffered = '';
  return {
    async nextLine() {
      while (!buffered.includes('\n')) {
        const { value, done } = await reader.read();
        if (done) throw new Error('watch ended');
        buffered += Buffer.from(value).toString();
      }
      const i = buffered.indexOf('\n');
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      return line;
    },
    close: () => abort.abort(),
  };
}

it('a gateway request past --max-concurrent-streams waits until a stream ends', async () => {
  const m = await startMember({ name: 'streams', args: ['--max-concurrent-streams', '3'] });
  const watches = await Promise.all([1, 2, 3].map(() => openWatch(m.clientUrl, 'foo')));
  for (const w of watches) expect(await w.nextLine()).toContain('"created":true');

  let answered = false;
  const range = fetch(`${m.clientUrl}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from('foo').toString('base64') }) }).then(async (r) => {
    answered = true;
    return r.text();
  });
  // a write the three watches report: by then the range, sent before it, would have been
  // answered if it had a stream of its own
  await ctl(m.clientUrl, ['put', 'foo', 'bar']);
  for (const w of watches) expect(await w.nextLine()).toContain('"events"');
  expect(answered).toBe(false);

  watches[0]!.close();
  expect(await range).toContain('"revision":"2"');
  for (const w of watches.slice(1)) w.close();
});

it('below the limit every request is served at once', async () => {
  const m = await startMember({ name: 'streams2', args: ['--max-concurrent-streams', '3'] });
  const watches = await Promise.all([1, 2].map(() => openWatch(m.clientUrl, 'foo')));
  for (const w of watches) expect(await w.nextLine()).toContain('"created":true');
  const r = await fetch(`${m.clientUrl}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from('foo').toString('base64') }) });
  expect(await r.text()).toContain('"revision":"1"');
  for (const w of watches) w.close();
});
