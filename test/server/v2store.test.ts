// The v2 store as a unit, with etcd 3.4's semantics (etcd's v2store tests and what
// real etcd answers): indexes, directories, TTLs, compare-and-swap/delete, in-order
// keys, hidden keys, the 1000-event history behind waitIndex, watchers and snapshots.

import { describe, expect, it } from 'vitest';
import { V2Error, V2Store, eventJson, isCreated } from '../../src/server/v2store/index.js';

const S = 1_000_000_000n;
const T0 = 1_700_000_000n * S;

function store(now = T0): V2Store {
  return new V2Store(['/0', '/1'], () => now);
}

function v2err(fn: () => unknown): V2Error {
  try {
    fn();
  } catch (err) {
    if (err instanceof V2Error) return err;
    throw err;
  }
  throw new Error('no error');
}

describe('V2Store writes and reads', () => {
  it('counts one index per write and reports created vs replaced', () => {
    const s = store();
    const e1 = s.set('/1/foo', false, 'bar');
    expect(eventJson(e1)).toEqual({ action: 'set', node: { key: '/1/foo', value: 'bar', modifiedIndex: 1, createdIndex: 1 } });
    expect(isCreated(e1)).toBe(true);
    const e2 = s.set('/1/foo', false, 'baz');
    expect(isCreated(e2)).toBe(false);
    expect(e2.prevNode).toEqual({ key: '/1/foo', value: 'bar', modifiedIndex: 1, createdIndex: 1 });
    expect(e2.etcdIndex).toBe(2);
    // reads do not move the index
    expect(s.get('/1/foo', false, false).etcdIndex).toBe(2);
    expect(s.index).toBe(2);
  });

  it('answers etcd error codes with their causes', () => {
    const s = store();
    s.set('/1/file', false, 'v');
    expect(v2err(() => s.get('/1/nope', false, false)).toJSON()).toEqual({ errorCode: 100, message: 'Key not found', cause: '/1/nope', index: 1 });
    expect(v2err(() => s.create('/1/file', false, 'x', false)).toJSON()).toMatchObject({ errorCode: 105, message: 'Key already exists', cause: '/1/file' });
    expect(v2err(() => s.set('/1/file/under', false, 'x')).toJSON()).toMatchObject({ errorCode: 104, message: 'Not a directory', cause: '/1/file' });
    s.create('/1/dir', true, '', false);
    expect(v2err(() => s.set('/1/dir', false, 'x')).toJSON()).toMatchObject({ errorCode: 102, message: 'Not a file' });
    s.set('/1/dir/a', false, '1');
    expect(v2err(() => s.delete('/1/dir', true, false)).toJSON()).toMatchObject({ errorCode: 108, message: 'Directory not empty', cause: '/1/dir' });
    expect(v2err(() => s.delete('/1/dir', false, false)).errorCode).toBe(102);
    expect(v2err(() => s.delete('/1', true, true)).toJSON()).toMatchObject({ errorCode: 107, message: 'Root is read only' });
    expect(v2err(() => s.get('/1/nope', false, false)).status).toBe(404);
    // failed writes leave the index alone
    expect(s.index).toBe(3);
  });

  it('lists a directory, recursively and sorted, without hidden keys', () => {
    const s = store();
    s.set('/1/d/b', false, '2');
    s.set('/1/d/a', false, '1');
    s.set('/1/d/_hidden', false, 'h');
    s.set('/1/d/sub/c', false, '3');
    const flat = s.get('/1/d', false, true).node;
    expect(flat.nodes?.map((n) => n.key)).toEqual(['/1/d/a', '/1/d/b', '/1/d/sub']);
    expect(flat.nodes?.[2]).toEqual({ key: '/1/d/sub', dir: true, modifiedIndex: 4, createdIndex: 4 });
    const deep = s.get('/1/d', true, true).node;
    expect(deep.nodes?.[2]?.nodes).toEqual([{ key: '/1/d/sub/c', value: '3', modifiedIndex: 4, createdIndex: 4 }]);
    // a hidden key is readable by name
    expect(s.get('/1/d/_hidden', false, false).node.value).toBe('h');
  });

  it('makes in-order keys named by their index', () => {
    const s = store();
    s.set('/1/x', false, '');
    const e = s.create('/1/queue', false, 'job', true);
    expect(e.node.key).toBe('/1/queue/00000000000000000002');
    expect(s.create('/1/queue', false, 'job2', true).node.key).toBe('/1/queue/00000000000000000003');
  });

  it('compare-and-swap and compare-and-delete check value and index', () => {
    const s = store();
    s.set('/1/k', false, 'one');
    expect(v2err(() => s.compareAndSwap('/1/k', 'two', 0, 'x')).toJSON()).toEqual({ errorCode: 101, message: 'Compare failed', cause: '[two != one]', index: 1 });
    expect(v2err(() => s.compareAndSwap('/1/k', '', 7, 'x')).cause).toBe('[7 != 1]');
    expect(v2err(() => s.compareAndSwap('/1/k', 'two', 7, 'x')).cause).toBe('[two != one] [7 != 1]');
    const ok = s.compareAndSwap('/1/k', 'one', 1, 'two');
    expect(eventJson(ok)).toEqual({
      action: 'compareAndSwap',
      node: { key: '/1/k', value: 'two', modifiedIndex: 2, createdIndex: 1 },
      prevNode: { key: '/1/k', value: 'one', modifiedIndex: 1, createdIndex: 1 },
    });
    expect(v2err(() => s.compareAndDelete('/1/k', 'one', 0)).errorCode).toBe(101);
    const del = s.compareAndDelete('/1/k', '', 2);
    expect(eventJson(del)).toEqual({
      action: 'compareAndDelete',
      node: { key: '/1/k', modifiedIndex: 3, createdIndex: 1 },
      prevNode: { key: '/1/k', value: 'two', modifiedIndex: 2, createdIndex: 1 },
    });
  });

  it('update needs the key; a recursive delete removes the directory', () => {
    const s = store();
    expect(v2err(() => s.update('/1/k', 'v')).errorCode).toBe(100);
    s.set('/1/d/k', false, 'v');
    expect(s.update('/1/d/k', 'w').node.value).toBe('w');
    const e = s.delete('/1/d', false, true);
    expect(eventJson(e)).toEqual({
      action: 'delete',
      node: { key: '/1/d', dir: true, modifiedIndex: 3, createdIndex: 1 },
      prevNode: { key: '/1/d', dir: true, modifiedIndex: 1, createdIndex: 1 },
    });
    expect(v2err(() => s.get('/1/d/k', false, false)).errorCode).toBe(100);
  });
});

describe('V2Store TTLs', () => {
  it('shows the TTL rounded up and expires on the SYNC time, not the local clock', () => {
    const s = store(T0);
    const e = s.set('/1/t', false, 'v', { expireTime: T0 + 5n * S + 1n });
    expect(e.node.ttl).toBe(6);
    expect(e.node.expiration).toBe('2023-11-14T22:13:25.000000001Z');
    expect(s.hasTtlKeys()).toBe(true);
    expect(s.deleteExpiredKeys(T0 + 5n * S)).toEqual([]);
    const [ev] = s.deleteExpiredKeys(T0 + 6n * S);
    expect(eventJson(ev!)).toMatchObject({ action: 'expire', node: { key: '/1/t', modifiedIndex: 2, createdIndex: 1 }, prevNode: { key: '/1/t', value: 'v' } });
    expect(s.hasTtlKeys()).toBe(false);
    expect(v2err(() => s.get('/1/t', false, false)).errorCode).toBe(100);
  });

  it('a set without a TTL makes the key permanent; a refresh keeps the value and wakes no watcher', () => {
    const s = store(T0);
    s.set('/1/t', false, 'v', { expireTime: T0 + 5n * S });
    const w = s.watch('/1/t', false, false, 0);
    const r = s.set('/1/t', false, '', { expireTime: T0 + 50n * S, refresh: true });
    expect(r.node.value).toBe('v');
    expect(r.refresh).toBe(true);
    s.update('/1/t', 'w');
    expect(s.hasTtlKeys()).toBe(false);
    expect(s.deleteExpiredKeys(T0 + 100n * S)).toEqual([]);
    return w.next().then((e) => expect(e?.action).toBe('update'));
  });

  it('an expiring directory takes its children with it', () => {
    const s = store(T0);
    s.create('/1/d', true, '', false, { expireTime: T0 + S });
    s.set('/1/d/k', false, 'v', { expireTime: T0 + 2n * S });
    const events = s.deleteExpiredKeys(T0 + 3n * S);
    expect(events.map((e) => e.node.key)).toEqual(['/1/d']);
    expect(s.hasTtlKeys()).toBe(false);
  });
});

describe('V2Store watchers and history', () => {
  it('a watcher gets the next write under its key; recursive sees children', async () => {
    const s = store();
    const plain = s.watch('/1/d', false, false, 0);
    const rec = s.watch('/1/d', true, false, 0);
    s.set('/1/d/k', false, 'v');
    expect((await rec.next())?.node.key).toBe('/1/d/k');
    expect(() => s.set('/1/d', false, 'x')).toThrow('Not a file');
    s.delete('/1/d', true, true);
    expect((await plain.next())?.action).toBe('delete');
  });

  it('a waitIndex in the history answers at once, stamped with the current index', async () => {
    const s = store();
    s.set('/1/a', false, '1');
    s.set('/1/b', false, '2');
    s.set('/1/a', false, '3');
    const w = s.watch('/1/a', false, false, 2);
    const e = await w.next();
    expect(e?.node.value).toBe('3');
    expect(e?.etcdIndex).toBe(3);
    expect(w.startIndex).toBe(3);
  });

  it('forgets events older than the last 1000 (401)', () => {
    const s = store();
    for (let i = 0; i < 1005; i++) s.set('/1/k', false, String(i));
    const err = v2err(() => s.watch('/1/k', false, false, 5));
    expect(err.toJSON()).toEqual({
      errorCode: 401,
      message: 'The event in requested index is outdated and cleared',
      cause: 'the requested history has been cleared [6/5]',
      index: 1005,
    });
    expect(err.status).toBe(400);
  });

  it('a recursive watch above a hidden key does not see it', async () => {
    const s = store();
    const w = s.watch('/1', true, false, 0);
    s.set('/1/_h', false, 'x');
    s.set('/1/v', false, 'y');
    expect((await w.next())?.node.key).toBe('/1/v');
  });
});

describe('V2Store snapshots', () => {
  it('save/recover keeps the tree, TTLs, index and history', async () => {
    const s = store(T0);
    s.set('/1/a', false, '1');
    s.create('/1/d', true, '', false, { expireTime: T0 + S });
    s.set('/1/d/b', false, '2');
    const copy = store(T0);
    copy.recover(JSON.parse(JSON.stringify(s.save())));
    expect(copy.index).toBe(3);
    expect(copy.get('/1', true, true).node).toEqual(s.get('/1', true, true).node);
    expect(copy.hasTtlKeys()).toBe(true);
    expect((await copy.watch('/1/a', false, false, 1).next())?.node.value).toBe('1');
    expect(copy.set('/1/c', false, '3').node.modifiedIndex).toBe(4);
  });
});
