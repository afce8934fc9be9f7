// The v2 API behind --enable-v2, end to end: plain HTTP as curl and v2 client libraries
// speak it, and stock `ETCDCTL_API=2 etcdctl`, against a real member process. The same
// expectations hold for real etcd 3.4.23 (E2E_BINARY=etcd).

import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { type HttpResponse, type Member, cleanup, ctl, etcdctl2, httpRequest, startMember, stopMember, waitFor } from './harness.js';

afterAll(cleanup);

/** Stock etcdctl with the v2 API. */
function ctl2(m: Member, args: string[]): Promise<{ code: number; out: string }> {
  return etcdctl2(m.clientUrl, args);
}

async function req(m: Member, method: string, path: string, form?: Record<string, string>): Promise<HttpResponse> {
  return httpRequest(m.clientUrl + path, { method, form });
}

async function until<T>(fn: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('without --enable-v2', () => {
  it('/v2/keys is 404 page not found', async () => {
    const m = await startMember();
    const r = await req(m, 'GET', '/v2/keys/foo');
    expect(r.status).toBe(404);
    expect(r.text).toBe('404 page not found\n');
    await stopMember(m);
  });
});

describe('/v2/keys', () => {
  let m: Member;

  it('starts a member with --enable-v2', async () => {
    m = await startMember({ name: 'v2', args: ['--enable-v2', '--snapshot-count', '20'] });
  });

  it('sets and gets a key with etcd index and raft headers', async () => {
    const put = await req(m, 'PUT', '/v2/keys/foo', { value: 'bar' });
    expect(put.status).toBe(201);
    expect(put.text.startsWith('{"action":"set","node":{"key":"/foo","value":"bar","')).toBe(true);
    const idx = Number(put.headers.get('x-etcd-index'));
    expect(put.json.node.modifiedIndex).toBe(idx);
    expect(Number(put.headers.get('x-raft-index'))).toBeGreaterThan(0);
    expect(Number(put.headers.get('x-raft-term'))).toBeGreaterThan(0);
    const again = await req(m, 'PUT', '/v2/keys/foo', { value: 'baz' });
    expect(again.status).toBe(200);
    expect(again.json.prevNode).toEqual({ key: '/foo', value: 'bar', modifiedIndex: idx, createdIndex: idx });
    const get = await req(m, 'GET', '/v2/keys/foo?quorum=true');
    // a set replaces the node: it is created again
    expect(get.json).toEqual({ action: 'get', node: { key: '/foo', value: 'baz', modifiedIndex: idx + 1, createdIndex: idx + 1 } });
  });

  it('answers etcd error codes as JSON with X-Etcd-Index', async () => {
    const missing = await req(m, 'GET', '/v2/keys/nope');
    expect(missing.status).toBe(404);
    expect(missing.json).toEqual({ errorCode: 100, message: 'Key not found', cause: '/nope', index: Number(missing.headers.get('x-etcd-index')) });
    const exists = await req(m, 'PUT', '/v2/keys/foo', { value: 'x', prevExist: 'false' });
    expect(exists.status).toBe(412);
    expect(exists.json).toMatchObject({ errorCode: 105, message: 'Key already exists', cause: '/foo' });
    const cas = await req(m, 'PUT', '/v2/keys/foo', { value: 'x', prevValue: 'wrong' });
    expect(cas.status).toBe(412);
    expect(cas.json).toMatchObject({ errorCode: 101, message: 'Compare failed', cause: '[wrong != baz]' });
    const badTtl = await req(m, 'PUT', '/v2/keys/foo', { value: 'x', ttl: 'soon' });
    expect(badTtl.status).toBe(400);
    expect(badTtl.json).toEqual({ errorCode: 202, message: 'The given TTL in POST form is not a number', cause: 'invalid value for "ttl"', index: 0 });
    const notEmpty = await req(m, 'PUT', '/v2/keys/d/k', { value: 'v' });
    expect(notEmpty.status).toBe(201);
    const rmdir = await req(m, 'DELETE', '/v2/keys/d?dir=true');
    expect(rmdir.status).toBe(403);
    expect(rmdir.json).toMatchObject({ errorCode: 108, message: 'Directory not empty', cause: '/d' });
  });

  it('compare-and-swap, compare-and-delete, in-order keys and sorted recursive listings', async () => {
    const cur = await req(m, 'GET', '/v2/keys/foo');
    const swapped = await req(m, 'PUT', '/v2/keys/foo', { value: 'new', prevIndex: String(cur.json.node.modifiedIndex) });
    expect(swapped.json.action).toBe('compareAndSwap');
    const del = await req(m, 'DELETE', `/v2/keys/foo?prevValue=new`);
    expect(del.json.action).toBe('compareAndDelete');
    const q1 = await req(m, 'POST', '/v2/keys/queue', { value: 'job1' });
    const q2 = await req(m, 'POST', '/v2/keys/queue', { value: 'job2' });
    expect(q1.status).toBe(201);
    expect(q1.json.node.key).toMatch(/^\/queue\/\d{20}$/);
    expect(q2.json.node.key > q1.json.node.key).toBe(true);
    await req(m, 'PUT', '/v2/keys/queue/_hidden', { value: 'h' });
    const list = await req(m, 'GET', '/v2/keys/queue?recursive=true&sorted=true');
    expect(list.json.node.nodes.map((n: { value: string }) => n.value)).toEqual(['job1', 'job2']);
    const root = await req(m, 'GET', '/v2/keys/');
    expect(root.json.action).toBe('get');
    expect(root.json.node.key).toBeUndefined();
    expect(root.json.node.dir).toBe(true);
  });

  it('a wait=true GET returns the next change; a waitIndex in the history answers at once', async () => {
    const before = await req(m, 'PUT', '/v2/keys/w', { value: '1' });
    const waiting = req(m, 'GET', '/v2/keys/w?wait=true');
    await new Promise((r) => setTimeout(r, 300));
    await req(m, 'PUT', '/v2/keys/w', { value: '2' });
    const e = await waiting;
    expect(e.json).toMatchObject({ action: 'set', node: { key: '/w', value: '2' }, prevNode: { value: '1' } });
    const past = await req(m, 'GET', `/v2/keys/w?wait=true&waitIndex=${before.json.node.modifiedIndex}`);
    expect(past.json.node.value).toBe('1');
    const rec = req(m, 'GET', '/v2/keys/dir?wait=true&recursive=true');
    await new Promise((r) => setTimeout(r, 300));
    await req(m, 'PUT', '/v2/keys/dir/child', { value: 'c' });
    expect((await rec).json.node.key).toBe('/dir/child');
  });

  it('forgets events older than the last 1000: 401', async () => {
    const first = await req(m, 'PUT', '/v2/keys/h', { value: '0' });
    for (let i = 0; i < 1010; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => req(m, 'PUT', `/v2/keys/h${j}`, { value: String(i) })));
    }
    const old = await req(m, 'GET', `/v2/keys/h?wait=true&waitIndex=${first.json.node.modifiedIndex}`);
    expect(old.status).toBe(400);
    expect(old.json).toMatchObject({ errorCode: 401, message: 'The event in requested index is outdated and cleared' });
    expect(old.json.cause).toMatch(/^the requested history has been cleared \[\d+\/\d+\]$/);
  });

  it('expires a TTL key, with an expire event for its watcher', async () => {
    const set = await req(m, 'PUT', '/v2/keys/ttl', { value: 'v', ttl: '1' });
    expect(set.json.node.ttl).toBe(1);
    expect(typeof set.json.node.expiration).toBe('string');
    const watch = await req(m, 'GET', `/v2/keys/ttl?wait=true&waitIndex=${set.json.node.modifiedIndex + 1}`);
    expect(watch.json).toMatchObject({ action: 'expire', node: { key: '/ttl' }, prevNode: { key: '/ttl', value: 'v' } });
    expect((await req(m, 'GET', '/v2/keys/ttl')).status).toBe(404);
  });

  it('keeps the keys and indexes across a restart (from snapshot and WAL)', async () => {
    const before = await req(m, 'GET', '/v2/keys/queue?recursive=true&sorted=true');
    await stopMember(m);
    m = await startMember({ name: 'v2', dataDir: m.dataDir, clientPort: Number(new URL(m.clientUrl).port), peerPort: Number(new URL(m.peerUrl).port), args: ['--enable-v2'] });
    const after = await req(m, 'GET', '/v2/keys/queue?recursive=true&sorted=true');
    expect(after.json.node).toEqual(before.json.node);
    const next = await req(m, 'PUT', '/v2/keys/after', { value: 'restart' });
    expect(next.json.node.modifiedIndex).toBeGreaterThan(Number(before.headers.get('x-etcd-index')));
  });

  it('stock etcdctl v2: set, get, mk, ls, update, rm, mkdir, rmdir, updatedir, watch', async () => {
    expect((await ctl2(m, ['set', 'c/k', 'v1'])).out).toBe('v1\n');
    expect((await ctl2(m, ['get', 'c/k'])).out).toBe('v1\n');
    expect((await ctl2(m, ['get', '--quorum', 'c/k'])).out).toBe('v1\n');
    expect((await ctl2(m, ['mk', 'c/k', 'v2'])).out).toMatch(/^Error:  105: Key already exists \(\/c\/k\) \[\d+\]\n$/);
    expect((await ctl2(m, ['update', 'c/k', 'v3'])).out).toBe('v3\n');
    expect((await ctl2(m, ['ls', 'c'])).out).toBe('/c/k\n');
    expect((await ctl2(m, ['rm', 'c/k'])).out).toBe('PrevNode.Value: v3\n');
    expect((await ctl2(m, ['rm', 'c/k'])).out).toMatch(/^Error:  100: Key not found \(\/c\/k\) \[\d+\]\n$/);
    expect((await ctl2(m, ['mkdir', 'e'])).code).toBe(0);
    expect((await ctl2(m, ['updatedir', '--ttl', '100', 'e'])).code).toBe(0);
    expect((await ctl2(m, ['rmdir', 'e'])).code).toBe(0);
    // from the current index on, so the set is seen however late the watch starts
    const now = (await req(m, 'GET', '/v2/keys/')).headers.get('x-etcd-index')!;
    const watch = spawn('etcdctl', ['--endpoints', m.clientUrl, 'watch', '--after-index', now, 'wk'], { env: { ...process.env, ETCDCTL_API: '2' } });
    const exited = new Promise((r) => watch.on('exit', r));
    let out = '';
    watch.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await ctl2(m, ['set', 'wk', 'seen']);
    const code = await exited;
    expect(code).toBe(0);
    expect(out).toBe('seen\n');
  });

  it('stock etcdctl v2: member list and cluster-health', async () => {
    const list = (await ctl2(m, ['member', 'list'])).out;
    expect(list).toMatch(new RegExp(`^[0-9a-f]+: name=v2 peerURLs=${m.peerUrl} clientURLs=${m.clientUrl} isLeader=true\\n$`));
    const health = (await ctl2(m, ['cluster-health'])).out;
    expect(health).toMatch(new RegExp(`^member [0-9a-f]+ is healthy: got healthy result from ${m.clientUrl}\\ncluster is healthy\\n$`));
  });

  it('/v2/members: list, update, unknown member, bad content type, then add', async () => {
    const list = await req(m, 'GET', '/v2/members');
    expect(list.json.members).toHaveLength(1);
    const self = list.json.members[0];
    expect(self).toEqual({ id: expect.stringMatching(/^[0-9a-f]+$/), name: 'v2', peerURLs: [m.peerUrl], clientURLs: [m.clientUrl] });
    expect((await req(m, 'GET', '/v2/members/leader')).json).toEqual(self);
    const json = (method: string, path: string, body: unknown) =>
      fetch(m.clientUrl + path, { method, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    const moved = 'http://127.0.0.1:1';
    expect((await json('PUT', `/v2/members/${self.id}`, { peerURLs: [moved] })).status).toBe(204);
    expect((await req(m, 'GET', '/v2/members')).json.members[0].peerURLs).toEqual([moved]);
    expect((await json('PUT', `/v2/members/${self.id}`, { peerURLs: [m.peerUrl] })).status).toBe(204);
    const unknown = await fetch(m.clientUrl + '/v2/members/1234', { method: 'DELETE' });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ message: 'No such member: 1234' });
    const form = await fetch(m.clientUrl + '/v2/members', { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: '{}' });
    expect(form.status).toBe(415);
    expect(await form.json()).toEqual({ message: 'Bad Content-Type text/plain, accept application/json' });
    const badUrl = await json('POST', '/v2/members', { peerURLs: ['ftp://127.0.0.1:2380'] });
    expect(badUrl.status).toBe(400);
    const dup = await json('POST', '/v2/members', { peerURLs: [m.peerUrl] });
    expect(dup.status).toBe(409);
    expect(await dup.json()).toEqual({ message: 'membership: peerURL exists' });
    // the last step: a second, never-started voter leaves this one-member cluster without quorum
    const added = await json('POST', '/v2/members', { peerURLs: ['http://127.0.0.1:2'] });
    expect(added.status).toBe(201);
    expect(await added.json()).toEqual({ id: expect.stringMatching(/^[0-9a-f]+$/), name: '', peerURLs: ['http://127.0.0.1:2'], clientURLs: [] });
    // with one of two voters started, the strict reconfiguration check refuses a third first
    const third = await json('POST', '/v2/members', { peerURLs: ['http://127.0.0.1:2'] });
    expect(third.status).toBe(500);
    expect(await third.json()).toEqual({ message: 'Internal Server Error' });
    await stopMember(m);
  });
});

describe("the v2 store's index", () => {
  // etcd 3.4 records every membership change in its v2 store's "/0" directory too (a
  // member's raftAttributes created or updated, a removed member's entry deleted and
  // added under removed_members), and each write is a step of the index v2 clients see.
  // Members of one cluster must agree on it: a client's waitIndex from one is used on
  // another.
  it('counts the membership writes as etcd 3.4.23 does: start, a learner added, its peer URLs updated, removed', async () => {
    const indexes: Record<string, number[]> = {};
    for (const binary of ['etcd', 'etcd-ts'] as const) {
      const m = await startMember({ binary, args: ['--enable-v2'] });
      try {
        await waitFor(m, 'enabled capabilities for version');
        const seen: number[] = [];
        const probe = async (): Promise<void> => {
          const r = await req(m, 'GET', '/v2/keys/probe?quorum=true');
          expect(r.json.errorCode).toBe(100);
          seen.push(Number(r.headers.get('x-etcd-index')));
        };
        await probe();
        const added = await ctl(m.clientUrl, ['member', 'add', 'learner', '--learner', '--peer-urls', 'http://127.0.0.1:1']);
        // etcdctl pads the id to 16 columns with spaces (%16x)
        const id = /Member +([0-9a-f]+) added/.exec(added)![1]!;
        await probe();
        await ctl(m.clientUrl, ['member', 'update', id, '--peer-urls', 'http://127.0.0.1:2']);
        await probe();
        await ctl(m.clientUrl, ['member', 'remove', id]);
        await probe();
        const put = await req(m, 'PUT', '/v2/keys/probe', { value: 'x' });
        seen.push(put.json.node.modifiedIndex);
        indexes[binary] = seen;
      } finally {
        await stopMember(m);
      }
    }
    expect(indexes['etcd-ts']).toEqual(indexes.etcd);
    // the start's raftAttributes, attributes and version; +1, +1, +2, then the put
    expect(indexes.etcd).toEqual([3, 4, 5, 7, 8]);
  });
});
