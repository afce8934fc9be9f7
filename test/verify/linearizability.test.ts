import { describe, expect, it } from 'vitest';
import { checkHistory, etcdModel } from '../../verify/check.js';
import { checkLinearizable } from '../../verify/linearizability.js';
import type { History } from '../../verify/history.js';
import {
  HistoryBuilder,
  del,
  delOk,
  get,
  gotKvs,
  grant,
  grantOk,
  kv,
  list,
  modEquals,
  put,
  putOk,
  revoke,
  revokeOk,
  txn,
  txnOk,
} from './builders.js';

/** linearizability and revision checks only (no recorder watches) */
const kinds = (h: History): string[] => checkHistory(h, { useReference: false }).anomalies.map((a) => a.kind);

describe('linearizability checker on hand-made histories', () => {
  it('accepts a sequential history', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, 1, put('g/a', '1'), putOk(2));
    b.op(0, 2, 3, get('g/a'), gotKvs(2, kv('g/a', '1', 2, 2, 1)));
    b.op(0, 4, 5, put('g/a', '2'), putOk(3));
    b.op(0, 6, 7, get('g/a'), gotKvs(3, kv('g/a', '2', 2, 3, 2)));
    b.op(0, 8, 9, del('g/a'), delOk(4, 1));
    b.op(0, 10, 11, get('g/a'), gotKvs(4));
    expect(kinds(b.history)).toEqual([]);
  });

  it('accepts a read that sees a concurrent write before the write returns', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, 10, put('g/a', '1'), putOk(2));
    b.op(1, 1, 2, get('g/a'), gotKvs(2, kv('g/a', '1', 2, 2, 1)));
    b.op(2, 3, 4, get('g/a'), gotKvs(2, kv('g/a', '1', 2, 2, 1)));
    expect(kinds(b.history)).toEqual([]);
  });

  it('rejects a stale read', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, 1, put('g/a', '1'), putOk(2));
    b.op(0, 2, 3, put('g/a', '2'), putOk(3));
    // after both writes returned, a read still sees the first value (with a fresh revision)
    b.op(1, 4, 5, get('g/a'), gotKvs(3, kv('g/a', '1', 2, 2, 1)));
    expect(kinds(b.history)).toContain('nonlinearizable');
  });

  it('rejects a lost write', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, 1, put('g/a', '1'), putOk(2));
    b.op(1, 2, 3, get('g/a'), gotKvs(2));
    expect(kinds(b.history)).toContain('nonlinearizable');
  });

  it('rejects a read of a value never written', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, 1, get('g/a'), gotKvs(2, kv('g/a', 'ghost', 2, 2, 1)));
    expect(kinds(b.history)).toContain('nonlinearizable');
  });

  it('rejects a revision going backwards for a client and in real time', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, 1, put('g/a', '1'), putOk(2));
    b.op(0, 2, 3, put('h/b', '2'), putOk(3));
    // different partitions, so only the global revision checks can see it
    b.op(0, 4, 5, get('g/a'), gotKvs(2, kv('g/a', '1', 2, 2, 1)));
    const k = kinds(b.history);
    expect(k).toContain('client-revision-regressed');
    expect(k).toContain('revision-order');
    expect(k).not.toContain('nonlinearizable');
  });

  it('rejects a write whose revision is older than a write that completed before it started', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, 1, put('g/a', '1'), putOk(5));
    b.op(1, 2, 3, put('h/b', '1'), putOk(4));
    expect(kinds(b.history)).toEqual(['revision-order']);
  });

  it('rejects two writes creating the same revision', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, 10, put('g/a', '1'), putOk(2));
    b.op(1, 0, 10, put('h/b', '1'), putOk(2));
    expect(kinds(b.history)).toEqual(['duplicate-revision']);
  });

  it('rejects a compare-and-set that succeeds twice on the same mod revision', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, 1, put('g/a', '1'), putOk(2));
    b.op(1, 2, 10, txn([modEquals('g/a', 2)], [{ type: 'put', key: 'g/a', value: 'x', lease: '0' }], []), txnOk(3, true, [{ type: 'put' }]));
    b.op(2, 2, 10, txn([modEquals('g/a', 2)], [{ type: 'put', key: 'g/a', value: 'y', lease: '0' }], []), txnOk(4, true, [{ type: 'put' }]));
    expect(kinds(b.history)).toContain('nonlinearizable');
  });

  it('accepts a compare-and-set race where exactly one wins', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, 1, put('g/a', '1'), putOk(2));
    b.op(1, 2, 10, txn([modEquals('g/a', 2)], [{ type: 'put', key: 'g/a', value: 'x', lease: '0' }], [{ type: 'range', key: 'g/a', end: '' }]), txnOk(4, true, [{ type: 'put' }]));
    b.op(2, 2, 10, txn([modEquals('g/a', 2)], [{ type: 'put', key: 'g/a', value: 'y', lease: '0' }], [{ type: 'range', key: 'g/a', end: '' }]), txnOk(4, false, [{ type: 'range', kvs: [kv('g/a', 'x', 2, 4, 2)], count: 1 }]));
    b.op(3, 0, 3, put('h/b', 'z'), putOk(3));
    expect(kinds(b.history)).toEqual([]);
  });

  it('treats a failed write as maybe applied: seen later', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, null, put('g/a', '1'), null);
    b.op(1, 5, 6, get('g/a'), gotKvs(7, kv('g/a', '1', 7, 7, 1)));
    b.op(1, 7, 8, put('g/a', '2'), putOk(8));
    b.op(1, 9, 10, get('g/a'), gotKvs(8, kv('g/a', '2', 7, 8, 2)));
    expect(kinds(b.history)).toEqual([]);
  });

  it('treats a failed write as maybe applied: never seen', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, null, put('g/a', '1'), null);
    b.op(1, 5, 6, get('g/a'), gotKvs(7));
    expect(kinds(b.history)).toEqual([]);
  });

  it('rejects a failed write whose revision contradicts what was read after it', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, null, put('g/a', '1'), null);
    b.op(1, 5, 6, get('g/a'), gotKvs(3)); // not applied by revision 3...
    b.op(1, 7, 8, get('g/a'), gotKvs(9, kv('g/a', '1', 2, 2, 1))); // ...yet it says it was written at 2
    expect(kinds(b.history)).toContain('nonlinearizable');
  });

  it('counts versions through a failed write that must have been applied', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, 1, put('g/a', '1'), putOk(2));
    b.op(0, 2, null, put('g/a', '2'), null);
    b.op(1, 10, 11, put('g/a', '3'), putOk(5));
    b.op(1, 12, 13, get('g/a'), gotKvs(5, kv('g/a', '3', 2, 5, 3)));
    expect(kinds(b.history)).toEqual([]);
    const bad = new HistoryBuilder();
    bad.op(0, 0, 1, put('g/a', '1'), putOk(2));
    bad.op(1, 10, 11, put('g/a', '3'), putOk(5));
    bad.op(1, 12, 13, get('g/a'), gotKvs(5, kv('g/a', '3', 2, 5, 3))); // version 3 with only two puts
    expect(kinds(bad.history)).toContain('nonlinearizable');
  });

  it('rejects a delete that reports a key it could not have deleted', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, 1, del('g/a'), delOk(2, 1));
    expect(kinds(b.history)).toContain('nonlinearizable');
  });

  it('checks ranges over a group, including counts and order', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, 1, put('g/b', '1'), putOk(2));
    b.op(0, 2, 3, put('g/a', '2'), putOk(3));
    b.op(0, 4, 5, list('g/', 'g0'), gotKvs(3, kv('g/a', '2', 3, 3, 1), kv('g/b', '1', 2, 2, 1)));
    expect(kinds(b.history)).toEqual([]);
    const bad = new HistoryBuilder();
    bad.op(0, 0, 1, put('g/b', '1'), putOk(2));
    bad.op(0, 2, 3, put('g/a', '2'), putOk(3));
    bad.op(0, 4, 5, list('g/', 'g0'), gotKvs(3, kv('g/b', '1', 2, 2, 1)));
    expect(kinds(bad.history)).toContain('nonlinearizable');
  });

  it('models leases: revoke deletes attached keys in one revision', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, 1, grant('7'), grantOk(1));
    b.op(0, 2, 3, put('g/a', '1', '7'), putOk(2));
    b.op(0, 4, 5, put('g/b', '2', '7'), putOk(3));
    b.op(0, 6, 7, revoke('7'), revokeOk(4));
    b.op(0, 8, 9, list('g/', 'g0'), gotKvs(4));
    expect(kinds(b.history)).toEqual([]);
    const bad = new HistoryBuilder();
    bad.op(0, 0, 1, grant('7'), grantOk(1));
    bad.op(0, 2, 3, put('g/a', '1', '7'), putOk(2));
    bad.op(0, 6, 7, revoke('7'), revokeOk(3));
    bad.op(0, 8, 9, get('g/a'), gotKvs(3, kv('g/a', '1', 2, 2, 1, '7')));
    expect(kinds(bad.history)).toContain('nonlinearizable');
  });

  it('rejects a put acknowledged with a lease that was never granted', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, 1, put('g/a', '1', '9'), putOk(2));
    expect(kinds(b.history)).toContain('nonlinearizable');
  });

  it('reports the longest linearizable prefix and the operation that cannot follow', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, 1, put('g/a', '1'), putOk(2));
    b.op(0, 2, 3, put('g/a', '2'), putOk(3));
    b.op(1, 4, 5, get('g/a'), gotKvs(3, kv('g/a', '1', 2, 2, 1)));
    const r = checkLinearizable(b.history.operations, etcdModel);
    expect(r.verdict).toBe('illegal');
    if (r.verdict !== 'illegal') return;
    expect(r.longest).toEqual([0, 1]);
    expect(r.blocking).toBe(2);
  });

  it('gives up with timeout after the deadline', () => {
    const b = new HistoryBuilder();
    for (let i = 0; i < 3000; i++) b.op(i % 4, i, i + 0.5, put('g/a', `v${i}`), putOk(i + 2));
    const r = checkLinearizable(b.history.operations, etcdModel, { deadline: Date.now() - 1 });
    expect(r.verdict).toBe('timeout');
  });
});
