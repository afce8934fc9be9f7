// Small builders for hand-made histories in the checker tests.
import type { Compare, History, KeyValue, KvRequest, KvResponse, Operation, TxnRequestOp, TxnResponseOp, WatchEvent, WatchResponseRecord, WatchSession } from '../../verify/history.js';
import { emptyHistory } from '../../verify/history.js';

export class HistoryBuilder {
  readonly history: History = emptyHistory();

  op(client: number, call: number, ret: number | null, input: KvRequest, output: KvResponse | null): Operation {
    const op: Operation = {
      id: this.history.operations.length,
      client,
      endpoint: 'test',
      input,
      call,
      return: ret === null ? Infinity : ret,
      output,
      ...(output === null ? { error: 'context deadline exceeded' } : {}),
    };
    this.history.operations.push(op);
    return op;
  }

  /** a recorder that saw `revisions` (each revision's events) from revision 1 */
  recorder(revisions: WatchEvent[][]): WatchSession {
    const s = session(this.history.watches.length, { key: '\0', end: '\0', startRevision: 1 }, [created(1), ...revisions.map((evs) => events(evs))]);
    s.recorder = true;
    this.history.watches.push(s);
    return s;
  }
}

export const kv = (key: string, value: string, create: number, mod: number, version: number, lease = '0'): KeyValue => ({
  key,
  value,
  createRevision: create,
  modRevision: mod,
  version,
  lease,
});

export const get = (key: string, serializable = false): KvRequest => ({ type: 'range', key, end: '', serializable });
export const list = (key: string, end: string): KvRequest => ({ type: 'range', key, end, serializable: false });
export const put = (key: string, value: string, lease = '0'): KvRequest => ({ type: 'put', key, value, lease });
export const del = (key: string): KvRequest => ({ type: 'delete', key, end: '' });
export const txn = (compare: Compare[], success: TxnRequestOp[], failure: TxnRequestOp[]): KvRequest => ({ type: 'txn', compare, success, failure });
export const grant = (id: string): KvRequest => ({ type: 'leaseGrant', id, ttl: 3600 });
export const revoke = (id: string): KvRequest => ({ type: 'leaseRevoke', id });
export const modEquals = (key: string, rev: number): Compare => ({ key, target: 'MOD', result: 'EQUAL', operand: rev });

export const gotKvs = (revision: number, ...kvs: KeyValue[]): KvResponse => ({ type: 'range', revision, kvs, count: kvs.length });
export const putOk = (revision: number): KvResponse => ({ type: 'put', revision });
export const delOk = (revision: number, deleted: number): KvResponse => ({ type: 'delete', revision, deleted });
export const txnOk = (revision: number, succeeded: boolean, results: TxnResponseOp[]): KvResponse => ({ type: 'txn', revision, succeeded, results });
export const grantOk = (revision: number): KvResponse => ({ type: 'leaseGrant', revision });
export const revokeOk = (revision: number): KvResponse => ({ type: 'leaseRevoke', revision });

export const putEvent = (k: KeyValue, prev: KeyValue | null = null): WatchEvent => ({ type: 'PUT', kv: k, prevKv: prev });
export const delEvent = (key: string, rev: number, prev: KeyValue | null = null): WatchEvent => ({
  type: 'DELETE',
  kv: { key, value: '', createRevision: 0, modRevision: rev, version: 0, lease: '0' },
  prevKv: prev,
});

const response = (over: Partial<WatchResponseRecord>): WatchResponseRecord => ({
  time: 0,
  headerRevision: 0,
  watchId: '0',
  created: false,
  canceled: false,
  compactRevision: 0,
  cancelReason: '',
  progress: false,
  events: [],
  ...over,
});

export const created = (rev: number): WatchResponseRecord => response({ created: true, headerRevision: rev });
export const events = (evs: WatchEvent[]): WatchResponseRecord =>
  response({ events: evs, headerRevision: Math.max(0, ...evs.map((e) => e.kv.modRevision)) });
export const progress = (rev: number): WatchResponseRecord => response({ progress: true, headerRevision: rev, watchId: '-1' });
export const compacted = (rev: number): WatchResponseRecord => response({ canceled: true, compactRevision: rev });

export function session(
  id: number,
  req: Partial<WatchSession['request']> & { key: string },
  responses: WatchResponseRecord[],
): WatchSession {
  return {
    id,
    client: 100 + id,
    endpoint: 'test',
    recorder: false,
    request: { end: '', startRevision: 0, prevKv: false, progressNotify: false, filters: [], ...req },
    opened: 0,
    closed: 0,
    end: 'canceled',
    responses,
  };
}
