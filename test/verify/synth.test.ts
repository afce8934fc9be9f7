import { describe, expect, it } from 'vitest';
import { checkHistory } from '../../verify/check.js';
import { historyFromJsonLines, historyToJsonLines, type History, type KeyValue, type Operation } from '../../verify/history.js';
import { synthesizeHistory } from '../../verify/synth.js';

const clone = (h: History): History => historyFromJsonLines(historyToJsonLines(h));

describe('synthetic histories of a correct etcd', () => {
  const base = synthesizeHistory({ seed: 11, operations: 5000, clients: 10, failRate: 0.03 });

  it('pass every check, with and without the watch history', () => {
    const full = checkHistory(base);
    expect(full.anomalies).toEqual([]);
    expect(full.verdict).toBe('valid');
    expect(full.stats.patched).toBeGreaterThan(0);
    const bare = checkHistory(base, { useReference: false });
    expect(bare.verdict).toBe('valid');
  });

  it('survive a JSON lines round trip (Infinity returns included)', () => {
    const copy = clone(base);
    expect(copy.operations.filter((o) => o.return === Infinity).length).toBe(base.operations.filter((o) => o.return === Infinity).length);
    expect(checkHistory(copy).verdict).toBe('valid');
  });

  it('fail when one read returns an overwritten value', () => {
    const h = clone(base);
    // a linearizable get of a key that was overwritten before the get started
    const target = findStaleCandidate(h.operations);
    expect(target).toBeDefined();
    const { read, older } = target!;
    if (read.output?.type !== 'range') throw new Error('unreachable');
    read.output.kvs = [older];
    const r = checkHistory(h, { useReference: false });
    expect(r.verdict).toBe('invalid');
    expect(r.anomalies.map((a) => a.kind)).toContain('nonlinearizable');
  });

  it('fail when an acknowledged write vanishes from the watch history', () => {
    const h = clone(base);
    const recorder = h.watches.find((w) => w.recorder)!;
    const victim = h.operations.find((o) => o.input.type === 'put' && o.output !== null && o.output.revision > 100)!;
    for (const resp of recorder.responses) {
      resp.events = resp.events.filter((e) => e.kv.modRevision !== victim.output!.revision);
    }
    const kinds = checkHistory(h).anomalies.map((a) => a.kind);
    expect(kinds).toContain('reference-gap');
  });
});

/** a successful get whose value's writer returned before the get was called, plus an older value of that key */
function findStaleCandidate(ops: Operation[]): { read: Operation; older: KeyValue } | undefined {
  const seen = new Map<string, KeyValue[]>();
  for (const op of [...ops].sort((a, b) => a.call - b.call)) {
    const out = op.output;
    if (op.input.type !== 'range' || op.input.serializable || op.input.end !== '' || out?.type !== 'range' || out.kvs.length !== 1) continue;
    const current = out.kvs[0]!;
    const earlier = (seen.get(current.key) ?? []).find((k) => k.modRevision < current.modRevision && k.value !== current.value);
    const writer = ops.find((w) => w.output !== null && w.return < op.call && w.output.revision === current.modRevision);
    if (earlier !== undefined && writer !== undefined) return { read: op, older: earlier };
    seen.set(current.key, [...(seen.get(current.key) ?? []), current]);
  }
  return undefined;
}
