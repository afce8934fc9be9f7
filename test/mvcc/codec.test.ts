import { describe, expect, it } from 'vitest';
import { decodeKeyValue, encodeKeyValue, type IndexFields, readIndexFields, valueViewOf } from '../../src/mvcc/codec.js';
import type { KeyValue } from '../../src/mvcc/index.js';

const kv = (value: string, lease: bigint, extra: Partial<KeyValue> = {}): KeyValue => ({
  key: Buffer.from('/registry/pods/a'),
  createRevision: 7,
  modRevision: 300_000,
  version: 2,
  value: Buffer.from(value),
  lease,
  ...extra,
});

describe('mvccpb.KeyValue codec', () => {
  it('round-trips, and the value view points at the value inside the record', () => {
    const cases = [
      kv('v', 0n),
      kv('x'.repeat(300), 0x7fn),
      kv('with a lease', 0x1234_5678_9abc_def0n),
      kv('negative lease', -5n),
      kv('', 42n),
      kv('no revisions', 0n, { createRevision: 0, modRevision: 0, version: 0 }),
      kv('big revisions', 1n, { createRevision: 2 ** 40, modRevision: 2 ** 52, version: 2 ** 35 }),
    ];
    for (const c of cases) {
      const record = encodeKeyValue(c);
      expect(decodeKeyValue(record)).toEqual(c);
      const view = valueViewOf(record, c);
      expect(view.equals(c.value), c.value.toString()).toBe(true);
      expect(view.buffer).toBe(record.buffer); // shares the record's memory
    }
  });

  it('reads the key index fields in place as decodeKeyValue reads them, into the same reused object', () => {
    const out: IndexFields = { key: 'stale', createRevision: 99, version: 99, lease: 99n };
    const cases = [
      kv('v', 0n),
      kv('with a lease', 0x1234_5678_9abc_def0n),
      kv('negative lease', -5n),
      kv('binary key', 0n, { key: Buffer.from([0x00, 0x80, 0xff, 0x7f]) }),
      kv('no revisions', 0n, { createRevision: 0, modRevision: 0, version: 0 }),
      kv('big revisions', 1n, { createRevision: 2 ** 40, modRevision: 2 ** 52, version: 2 ** 35 }),
      // a tombstone record is the key alone: every other field back to its zero
      { key: Buffer.from('gone'), createRevision: 0, modRevision: 0, version: 0, value: Buffer.alloc(0), lease: 0n },
    ];
    for (const c of cases) {
      readIndexFields(encodeKeyValue(c), out);
      expect(out).toEqual({ key: c.key.toString('latin1'), createRevision: c.createRevision, version: c.version, lease: c.lease });
    }
    expect(() => readIndexFields(Buffer.from([0x0a, 0x05, 0x61]), out)).toThrow(/runs past the end/);
  });

  it('encodes as gogoproto does: fields in order, zero values left out', () => {
    const record = encodeKeyValue({ key: Buffer.from('k'), createRevision: 2, modRevision: 3, version: 1, value: Buffer.from('v'), lease: 0n });
    expect(record.toString('hex')).toBe('0a016b1002180320012a0176');
  });
});
