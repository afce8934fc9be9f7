import { startGatewayMember, request } from './member.js';
for (let round = 0; round < 5; round++) {
  const m = await startGatewayMember();
  for (let i = 0; i < 30; i++) {
    await request(m.url, '/v3/kv/put', '{"key":"eA==","value":"eA=="}');
    const t = performance.now();
    const r = await request(m.url, '/v3/kv/range', '{"key":"eA=="}');
    const dt = performance.now() - t;
    if (r.status !== 200 || dt > 500) console.log(round, i, r.status, r.body, dt);
  }
  await m.close();
}
console.log('done');
