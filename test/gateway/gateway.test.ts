// The JSON gateway in front of a real etcd-ts member: every path family round-trips,
// streams (watch, keepalive, snapshot) work over HTTP/1.1, and responses have the shapes
// etcd 3.4.23's gateway gave for the same requests (compared with curl against
// /usr/bin/etcd; IDs and revisions differ, the layout, headers and statuses must not).

import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type GatewayMember, StreamingRequest, b64, post, request, startGatewayMember } from './member.js';

let m: GatewayMember;

beforeAll(async () => {
  m = await startGatewayMember();
}, 60_000);

afterAll(async () => {
  await m?.close();
});

const HEADER_KEYS = ['cluster_id', 'member_id', 'revision', 'raft_term'];

describe('KV', () => {
  it('put, range, txn, delete and compaction round-trip in jsonpb shapes', async () => {
    const put = await request(m.url, '/v3/kv/put', JSON.stringify({ key: b64('foo'), value: b64('bar') }));
    expect(put.status).toBe(200);
    expect(put.headers['content-type']).toBe('application/json');
    expect(put.headers['grpc-metadata-content-type']).toBe('application/grpc');
    expect(put.headers['content-length']).toBe(String(Buffer.byteLength(put.body)));
    const putJson = JSON.parse(put.body) as { header: Record<string, string> };
    expect(Object.keys(putJson)).toEqual(['header']);
    expect(Object.keys(putJson.header)).toEqual(HEADER_KEYS);
    // 64-bit integers are strings
    for (const v of Object.values(putJson.header)) expect(typeof v).toBe('string');
    const rev = Number(putJson.header['revision']);

    const again = await post(m.url, '/v3/kv/put', { key: b64('foo'), value: b64('baz'), prev_kv: true });
    expect(again.json['prev_kv']).toEqual({
      key: b64('foo'),
      create_revision: String(rev),
      mod_revision: String(rev),
      version: '1',
      value: b64('bar'),
    });

    const range = await request(m.url, '/v3/kv/range', JSON.stringify({ key: b64('foo') }));
    const rangeJson = JSON.parse(range.body) as Record<string, unknown>;
    expect(Object.keys(rangeJson)).toEqual(['header', 'kvs', 'count']);
    expect(rangeJson['kvs']).toEqual([
      { key: b64('foo'), create_revision: String(rev), mod_revision: String(rev + 1), version: '2', value: b64('baz') },
    ]);
    expect(rangeJson['count']).toBe('1');

    // A miss has no kvs and no count; count_only has only the count.
    expect(Object.keys((await post(m.url, '/v3/kv/range', { key: b64('nothing') })).json)).toEqual(['header']);
    const counted = await post(m.url, '/v3/kv/range', { key: 'AA==', range_end: 'AA==', count_only: true });
    expect(Object.keys(counted.json)).toEqual(['header', 'count']);

    const txn = await post(m.url, '/v3/kv/txn', {
      compare: [{ key: b64('foo'), result: 'EQUAL', target: 'VALUE', value: b64('baz') }],
      success: [{ request_range: { key: b64('foo') } }, { request_put: { key: b64('a'), value: b64('b') } }],
      failure: [],
    });
    expect(txn.json['succeeded']).toBe(true);
    const responses = txn.json['responses'] as Array<Record<string, { header: object }>>;
    expect(responses.map((r) => Object.keys(r)[0])).toEqual(['response_range', 'response_put']);
    expect(responses[1]!['response_put']).toEqual({ header: { revision: String(rev + 2) } });

    // etcd3gw's create(): create_revision 0 in the compare oneof; a failed txn has no "succeeded".
    const failed = await post(m.url, '/v3/kv/txn', {
      compare: [{ key: b64('foo'), result: 'EQUAL', target: 'CREATE', create_revision: 0 }],
      success: [],
      failure: [{ request_delete_range: { key: b64('a'), prev_kv: true } }],
    });
    expect(failed.json['succeeded']).toBeUndefined();
    const del = (failed.json['responses'] as Array<Record<string, Record<string, unknown>>>)[0]!['response_delete_range']!;
    expect(del['deleted']).toBe('1');
    expect((del['prev_kvs'] as unknown[]).length).toBe(1);

    const compact = await post(m.url, '/v3/kv/compaction', { revision: String(rev + 1), physical: true });
    expect(compact.status).toBe(200);
    const old = await request(m.url, '/v3/kv/range', JSON.stringify({ key: b64('foo'), revision: rev }));
    expect(old.status).toBe(400);
    expect(JSON.parse(old.body)).toEqual({
      error: 'etcdserver: mvcc: required revision has been compacted',
      message: 'etcdserver: mvcc: required revision has been compacted',
      code: 11,
    });

    const gone = await post(m.url, '/v3/kv/deleterange', { key: b64('foo'), prev_kv: true });
    expect(gone.json['deleted']).toBe('1');
  });

  it('serves /v3beta/ as /v3/ and not /v3alpha/, as etcd 3.4 does', async () => {
    expect((await post(m.url, '/v3beta/kv/range', { key: b64('x') })).status).toBe(200);
    const alpha = await request(m.url, '/v3alpha/kv/range', JSON.stringify({ key: b64('x') }));
    expect(alpha.status).toBe(404);
    expect(alpha.body).toBe('404 page not found\n');
  });
});

describe('errors', () => {
  it('an RPC error: grpc-gateway body, HTTP status from the code, gRPC trailer', async () => {
    const r = await request(m.url, '/v3/kv/range', '{}');
    expect(r.status).toBe(400);
    expect(r.body).toBe('{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}');
    expect(r.headers['trailer']).toBe('Grpc-Trailer-Content-Type');
    expect(r.headers['transfer-encoding']).toBe('chunked');
    expect(r.trailers['grpc-trailer-content-type']).toBe('application/grpc');

    const lease = await request(m.url, '/v3/lease/revoke', '{"ID":99}');
    expect(lease.status).toBe(404);
    expect(JSON.parse(lease.body)).toMatchObject({ error: 'etcdserver: requested lease not found', code: 5 });
  });

  it('a body the gateway cannot read: 400 with Go\'s message, no trailer', async () => {
    const r = await request(m.url, '/v3/kv/range', 'not json');
    expect(r.status).toBe(400);
    expect(r.headers['content-length']).toBe(String(r.body.length));
    expect(r.headers['trailer']).toBeUndefined();
    expect(r.body).toBe(
      `{"error":"invalid character 'o' in literal null (expecting 'u')","message":"invalid character 'o' in literal null (expecting 'u')","code":3}`,
    );
    const b = await request(m.url, '/v3/kv/put', '{"key":"!!!"}');
    expect(JSON.parse(b.body)).toEqual({
      error: 'illegal base64 data at input byte 0',
      message: 'illegal base64 data at input byte 0',
      code: 3,
    });
  });

  it('unknown paths are 404 and other methods 405, in plain text', async () => {
    for (const path of ['/v3/nothing', '/v3/kv/range/', '/v3/', '/v3/auth/status']) {
      const r = await request(m.url, path, '{}');
      expect([path, r.status, r.body]).toEqual([path, 404, 'Not Found\n']);
      expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
    }
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const r = await request(m.url, '/v3/kv/range', '', { method });
      expect([method, r.status, r.body]).toEqual([method, 405, 'Method Not Allowed\n']);
    }
  });

  it('auth answers as etcd with auth disabled and no users: Authenticate is FailedPrecondition (412)', async () => {
    const enable = await request(m.url, '/v3/auth/enable', '{}');
    expect([enable.status, JSON.parse(enable.body)]).toEqual([
      412,
      { error: 'etcdserver: root user does not exist', message: 'etcdserver: root user does not exist', code: 9 },
    ]);
    const authenticate = await request(m.url, '/v3/auth/authenticate', '{"name":"x","password":"y"}');
    expect([authenticate.status, JSON.parse(authenticate.body)]).toEqual([
      412,
      { error: 'etcdserver: authentication is not enabled', message: 'etcdserver: authentication is not enabled', code: 9 },
    ]);
    const users = await request(m.url, '/v3/auth/user/list', '{}');
    expect(users.status).toBe(200);
    expect(Object.keys(JSON.parse(users.body) as object)).toEqual(['header']);
    const get = await request(m.url, '/v3/auth/user/get', '{"name":"x"}');
    expect([get.status, (JSON.parse(get.body) as { error: string }).error]).toEqual([412, 'etcdserver: user name not found']);
  });

  it('services the member does not run answer Unimplemented (501)', async () => {
    const lock = await request(m.url, '/v3/lock/lock', '{"name":"eA=="}');
    expect(JSON.parse(lock.body)).toMatchObject({ code: 12, error: 'unknown service v3lockpb.Lock' });
    const observe = await request(m.url, '/v3/election/observe', '{"name":"eA=="}');
    expect(observe.status).toBe(501);
    expect(observe.body).toBe(
      '{"error":{"grpc_code":12,"http_code":501,"message":"unknown service v3electionpb.Election","http_status":"Not Implemented"}}',
    );
  });

  it('messages past the gRPC receive limit are refused as etcd refuses them', async () => {
    const tooBig = Buffer.alloc(2_200_000, 'x');
    const r = await request(m.url, '/v3/kv/put', JSON.stringify({ key: b64('big'), value: tooBig.toString('base64') }));
    expect(r.status).toBe(429);
    expect(JSON.parse(r.body)).toMatchObject({ code: 8, error: 'grpc: received message larger than max (2200010 vs. 2097152)' });
    const large = Buffer.alloc(1_600_000, 'x');
    const r2 = await request(m.url, '/v3/kv/put', JSON.stringify({ key: b64('big'), value: large.toString('base64') }));
    expect(r2.status).toBe(400);
    expect(JSON.parse(r2.body)).toMatchObject({ code: 3, error: 'etcdserver: request is too large' });
  });
});

describe('watch over HTTP', () => {
  it('streams created, events and a DELETE until the client goes away', async () => {
    const w = new StreamingRequest(m.url, '/v3/watch');
    // As curl -d sends it: the body ends right after the create request; the watch stays open.
    w.endBody({ create_request: { key: b64('wkey'), prev_kv: true } });
    const { status, headers } = await w.status;
    expect(status).toBe(200);
    expect(headers['transfer-encoding']).toBe('chunked');
    expect(headers['grpc-metadata-content-type']).toBe('application/grpc');
    const created = await w.result();
    expect(Object.keys(created)).toEqual(['header', 'created']);
    expect(created['created']).toBe(true);

    await post(m.url, '/v3/kv/put', { key: b64('wkey'), value: b64('v1') });
    await post(m.url, '/v3/kv/put', { key: b64('wkey'), value: b64('v2') });
    await post(m.url, '/v3/kv/deleterange', { key: b64('wkey') });
    const events: Array<Record<string, unknown>> = [];
    while (events.length < 3) {
      const r = await w.result();
      expect(r['watch_id']).toBeUndefined(); // the first watcher's id is 0, left out
      events.push(...(r['events'] as Array<Record<string, unknown>>));
    }
    expect(events[0]!['type']).toBeUndefined(); // PUT is the zero value
    expect((events[0]!['kv'] as Record<string, string>)['value']).toBe(b64('v1'));
    expect((events[1]!['prev_kv'] as Record<string, string>)['value']).toBe(b64('v1'));
    expect(events[2]!['type']).toBe('DELETE');
    expect(Object.keys(events[2]!['kv'] as object)).toEqual(['key', 'mod_revision']);

    const call = m.watchCalls[m.watchCalls.length - 1]!;
    expect(call.cancelled).toBe(false);
    w.close();
    await vi.waitFor(() => expect(call.cancelled).toBe(true), { timeout: 20_000, interval: 10 });
  });

  it('takes more requests on an open body: a second watcher, cancel, progress', async () => {
    const w = new StreamingRequest(m.url, '/v3/watch');
    w.send({ create_request: { key: b64('a'), watch_id: 7 } });
    expect(await w.result()).toMatchObject({ watch_id: '7', created: true });
    w.send({ create_request: { key: b64('b'), filters: ['NOPUT'] } });
    const second = await w.result();
    expect(second['created']).toBe(true);
    w.send(`{"cancel_request":{"watch_id":"7"}}  {"progress_request":{}}`);
    expect(await w.result()).toMatchObject({ watch_id: '7', canceled: true });
    expect((await w.result())['watch_id']).toBe('-1');
    await post(m.url, '/v3/kv/put', { key: b64('b'), value: b64('1') });
    await post(m.url, '/v3/kv/deleterange', { key: b64('b') });
    const ev = await w.result();
    expect(ev['watch_id']).toBe(second['watch_id']);
    expect((ev['events'] as Array<Record<string, unknown>>).map((e) => e['type'])).toEqual(['DELETE']);
    w.close();
  });

  it('a compacted start revision: created, then canceled with compact_revision', async () => {
    const w = new StreamingRequest(m.url, '/v3/watch');
    w.endBody({ create_request: { key: b64('foo'), start_revision: 1 } });
    expect((await w.result())['created']).toBe(true);
    const canceled = await w.result();
    expect(canceled['canceled']).toBe(true);
    expect(typeof canceled['compact_revision']).toBe('string');
    // etcd 3.4.23 gives no cancel_reason here: clients tell a compaction by compact_revision
    expect(Object.keys(canceled)).toEqual(['header', 'canceled', 'compact_revision']);
    w.close();
  });

  it('a first request that does not decode fails the call with Unknown (500)', async () => {
    const r = await request(m.url, '/v3/watch', '{"create_request":{"key":1}}');
    expect(r.status).toBe(500);
    expect(r.body).toBe(
      '{"error":"json: cannot unmarshal number into Go value of type []uint8","message":"json: cannot unmarshal number into Go value of type []uint8","code":2}',
    );
  });
});

describe('leases', () => {
  it('grant, time-to-live, leases, keepalive stream and revoke on both path families', async () => {
    const grant = await post(m.url, '/v3/lease/grant', { TTL: 30, ID: 4242 });
    expect(Object.keys(grant.json)).toEqual(['header', 'ID', 'TTL']);
    expect(grant.json['ID']).toBe('4242');
    expect(grant.json['TTL']).toBe('30');
    const random = await post(m.url, '/v3/lease/grant', { TTL: '20' });
    expect(random.json['ID']).toMatch(/^[1-9][0-9]*$/);

    const ttl = await post(m.url, '/v3/lease/timetolive', { ID: 4242, keys: true });
    expect(Object.keys(ttl.json)).toEqual(['header', 'ID', 'TTL', 'grantedTTL']);
    expect((await post(m.url, '/v3/kv/lease/timetolive', { ID: 99 })).json['TTL']).toBe('-1');
    for (const path of ['/v3/lease/leases', '/v3/kv/lease/leases']) {
      const ids = ((await post(m.url, path, {})).json['leases'] as Array<{ ID: string }>).map((l) => l.ID);
      expect(ids).toContain('4242');
    }

    // Three keepalives in one body, the last for an unknown lease (TTL 0, left out): three
    // answers, then the stream ends because the body did.
    const ka = await request(m.url, '/v3/lease/keepalive', '{"ID":4242}{"ID":"4242"} {"ID":99}');
    expect(ka.status).toBe(200);
    expect(ka.headers['grpc-metadata-content-type']).toBe('application/grpc');
    const lines = ka.body.split('\n');
    expect(lines.pop()).toBe('');
    const results = lines.map((l) => (JSON.parse(l) as { result: Record<string, string> }).result);
    expect(results.map((r) => [r['ID'], r['TTL']])).toEqual([
      ['4242', '30'],
      ['4242', '30'],
      ['99', undefined],
    ]);

    // An empty body: no keepalive, an empty 200 (no gRPC headers, nothing was sent).
    const empty = await request(m.url, '/v3/lease/keepalive', '');
    expect([empty.status, empty.body, empty.headers['grpc-metadata-content-type']]).toEqual([200, '', undefined]);

    // etcd3gw's Lease.refresh: one request, one JSON answer.
    const open = new StreamingRequest(m.url, '/v3/lease/keepalive');
    open.send({ ID: 4242 });
    expect((await open.result())['TTL']).toBe('30');
    open.send({ ID: 4242 });
    expect((await open.result())['TTL']).toBe('30');
    open.endBody();
    expect(await open.next()).toBeUndefined();

    expect((await post(m.url, '/v3/kv/lease/revoke', { ID: 4242 })).status).toBe(200);
    expect((await post(m.url, '/v3/lease/revoke', { ID: random.json['ID'] })).status).toBe(200);
    expect((await post(m.url, '/v3/lease/timetolive', { ID: 4242 })).json['TTL']).toBe('-1');
  });
});

describe('cluster and maintenance', () => {
  it('member list, add, update, remove and promote errors', async () => {
    const list = await post(m.url, '/v3/cluster/member/list', {});
    expect(Object.keys(list.json['header'] as object)).toEqual(['cluster_id', 'member_id', 'raft_term']);
    const members = list.json['members'] as Array<Record<string, unknown>>;
    expect(members).toHaveLength(1);
    expect(Object.keys(members[0]!)).toEqual(['ID', 'name', 'peerURLs', 'clientURLs']);

    const added = await post(m.url, '/v3/cluster/member/add', { peerURLs: ['http://127.0.0.1:1'], isLearner: true });
    expect(added.status).toBe(200);
    const member = added.json['member'] as Record<string, unknown>;
    // an unstarted member: no name, no client URLs
    expect(Object.keys(member)).toEqual(['ID', 'peerURLs', 'isLearner']);
    expect((added.json['members'] as unknown[]).length).toBe(2);
    const updated = await post(m.url, '/v3/cluster/member/update', { ID: member['ID'], peerURLs: ['http://127.0.0.1:2'] });
    expect(updated.status).toBe(200);
    expect((await post(m.url, '/v3/cluster/member/remove', { ID: member['ID'] })).status).toBe(200);

    const missing = await request(m.url, '/v3/cluster/member/promote', '{"ID":"1"}');
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body)).toMatchObject({ error: 'etcdserver: member not found', code: 5 });
  });

  it('status, alarm, hash (the Hash RPC), defragment, transfer-leadership', async () => {
    const status = await post(m.url, '/v3/maintenance/status', {});
    expect(Object.keys(status.json)).toEqual([
      'header',
      'version',
      'dbSize',
      'leader',
      'raftIndex',
      'raftTerm',
      'raftAppliedIndex',
      'dbSizeInUse',
    ]);
    expect(status.json['version']).toBe('3.4.23');
    expect((await post(m.url, '/v3/maintenance/alarm', { action: 'GET' })).json).toEqual({});
    const hash = await post(m.url, '/v3/maintenance/hash', { revision: '1' });
    expect(Object.keys(hash.json)).toEqual(['header', 'hash']);
    expect(typeof hash.json['hash']).toBe('number');
    expect((await post(m.url, '/v3/maintenance/defragment', {})).status).toBe(200);
    const move = await request(m.url, '/v3/maintenance/transfer-leadership', '{"targetID":"1"}');
    expect(move.status).toBe(412);
    expect(JSON.parse(move.body)).toMatchObject({ error: 'etcdserver: bad leader transferee', code: 9 });
  });

  it('snapshot streams base64 blobs whose last one is the SHA-256 of the rest', async () => {
    const r = await request(m.url, '/v3/maintenance/snapshot', '{}');
    expect(r.status).toBe(200);
    const lines = r.body.split('\n').filter((l) => l !== '');
    const blobs = lines.map((l) => (JSON.parse(l) as { result: { blob: string; remaining_bytes?: string } }).result);
    expect(blobs.length).toBeGreaterThanOrEqual(2);
    expect(blobs[blobs.length - 1]!.remaining_bytes).toBeUndefined();
    const data = Buffer.concat(blobs.slice(0, -1).map((b) => Buffer.from(b.blob, 'base64')));
    const sha = Buffer.from(blobs[blobs.length - 1]!.blob, 'base64');
    expect(data.length % 512).toBe(0);
    expect(sha.equals(createHash('sha256').update(data).digest())).toBe(true);
  });
});
