import { describe, expect, it } from 'vitest';
import { checkHistory } from '../../verify/check.js';
import { HistoryBuilder, delEvent, get, gotKvs, grant, grantOk, kv, put, putEvent, putOk, revoke, revokeOk } from './builders.js';

const kinds = (b: HistoryBuilder): string[] => checkHistory(b.history).anomalies.map((a) => a.kind);

describe('checks against the recorded watch history', () => {
  it('accept a history consistent with its recorder', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, 1, put('g/a', '1'), putOk(2));
    b.op(0, 2, 3, get('g/a', true), gotKvs(2, kv('g/a', '1', 2, 2, 1)));
    b.recorder([[putEvent(kv('g/a', '1', 2, 2, 1))]]);
    expect(kinds(b)).toEqual([]);
  });

  it('reject an acknowledged write missing from the history (lost write)', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, 1, put('g/a', '1'), putOk(2));
    b.op(0, 2, 3, put('g/a', '2'), putOk(3));
    b.op(1, 0, null, put('g/b', 'x'), null);
    b.recorder([[putEvent(kv('g/b', 'x', 2, 2, 1))], [putEvent(kv('g/a', '2', 3, 3, 1))]]);
    expect(kinds(b)).toContain('lost-write');
  });

  it('reject a revision no request wrote (phantom write)', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, 1, put('g/a', '1'), putOk(3));
    b.recorder([[putEvent(kv('g/z', 'nobody', 2, 2, 1))], [putEvent(kv('g/a', '1', 3, 3, 1))]]);
    expect(kinds(b)).toContain('phantom-write');
    const d = new HistoryBuilder();
    d.op(0, 0, 1, put('g/a', '1'), putOk(2));
    d.recorder([[putEvent(kv('g/a', '1', 2, 2, 1))], [delEvent('g/a', 3)]]);
    expect(kinds(d)).toContain('phantom-write');
  });

  it('reject a serializable read that matches no revision of the history', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, 1, put('g/a', '1'), putOk(2));
    b.op(0, 2, 3, put('g/a', '2'), putOk(3));
    b.op(1, 4, 5, get('g/a', true), gotKvs(3, kv('g/a', '1', 2, 2, 1)));
    b.recorder([[putEvent(kv('g/a', '1', 2, 2, 1))], [putEvent(kv('g/a', '2', 2, 3, 2))]]);
    expect(kinds(b)).toEqual(['stale-serializable-read']);
  });

  it('accept a serializable read that is old but consistent with its revision', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, 1, put('g/a', '1'), putOk(2));
    b.op(0, 2, 3, put('g/a', '2'), putOk(3));
    b.op(1, 4, 5, get('g/a', true), gotKvs(2, kv('g/a', '1', 2, 2, 1)));
    b.recorder([[putEvent(kv('g/a', '1', 2, 2, 1))], [putEvent(kv('g/a', '2', 2, 3, 2))]]);
    expect(kinds(b)).toEqual([]);
  });

  it('reject recorders that disagree, and a revision no recorder delivered', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, 1, put('g/a', '1'), putOk(2));
    b.op(0, 2, 3, put('g/a', '2'), putOk(3));
    b.recorder([[putEvent(kv('g/a', '1', 2, 2, 1))], [putEvent(kv('g/a', '2', 2, 3, 2))]]);
    b.recorder([[putEvent(kv('g/a', '1', 2, 2, 1))], [putEvent(kv('g/a', '2', 3, 3, 1))]]);
    expect(kinds(b)).toContain('reference-conflict');
    const gap = new HistoryBuilder();
    gap.op(0, 0, 1, put('g/a', '1'), putOk(2));
    gap.op(0, 2, 3, put('g/a', '2'), putOk(3));
    gap.recorder([[putEvent(kv('g/a', '2', 3, 3, 1))]]);
    expect(kinds(gap)).toContain('reference-gap');
  });

  it('reject a revision whose events are not in etcd\'s order (a revoke deletes keys sorted)', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, 1, grant('7'), grantOk(1));
    b.op(0, 2, 3, put('g/b', '1', '7'), putOk(2));
    b.op(0, 4, 5, put('g/a', '2', '7'), putOk(3));
    b.op(0, 6, 7, revoke('7'), revokeOk(4));
    const puts = [[putEvent(kv('g/b', '1', 2, 2, 1, '7'))], [putEvent(kv('g/a', '2', 3, 3, 1, '7'))]];
    b.recorder([...puts, [delEvent('g/b', 4), delEvent('g/a', 4)]]);
    expect(kinds(b)).toEqual(['event-order']);
    const sorted = new HistoryBuilder();
    sorted.history.operations.push(...b.history.operations);
    sorted.recorder([...puts, [delEvent('g/a', 4), delEvent('g/b', 4)]]);
    expect(kinds(sorted)).toEqual([]);
  });

  it('resolve a failed write from the history, then hold reads to it', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, null, put('g/a', '1'), null);
    b.op(1, 5, 6, put('g/a', '2'), putOk(3));
    b.op(1, 7, 8, get('g/a'), gotKvs(3, kv('g/a', '2', 2, 3, 2)));
    b.recorder([[putEvent(kv('g/a', '1', 2, 2, 1))], [putEvent(kv('g/a', '2', 2, 3, 2))]]);
    const r = checkHistory(b.history);
    expect(r.anomalies).toEqual([]);
    expect(r.stats.patched).toBe(1);
  });
});
