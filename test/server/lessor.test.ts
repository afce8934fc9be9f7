import { describe, expect, it } from 'vitest';
import { Lessor } from '../../src/server/lessor.js';

function lessor(): Lessor {
  return new Lessor({ minTtl: 5, now: () => 1_000 });
}

describe('Lessor memory', () => {
  it('a lease without keys holds no key set (each lease costs its record alone)', () => {
    const l = lessor();
    l.grant(1n, 60);
    l.restore(2n, 60, 0);
    expect(l.lookup(1n)!.keys).toBeUndefined();
    expect(l.lookup(2n)!.keys).toBeUndefined();
    expect(l.attached(1n)).toEqual([]);
  });

  it('keeps attached keys until they are detached, then drops the set', () => {
    const l = lessor();
    l.grant(1n, 60);
    l.attach(1n, Buffer.from('a'));
    l.attach(1n, Buffer.from('b'));
    l.attach(1n, Buffer.from('a'));
    expect(l.attached(1n).sort()).toEqual(['a', 'b']);
    l.detach(1n, 'a');
    expect(l.attached(1n)).toEqual(['b']);
    l.detach(1n, 'b');
    expect(l.lookup(1n)!.keys).toBeUndefined();
    // detaching from an unknown lease or an absent key changes nothing
    l.detach(1n, 'b');
    l.detach(9n, 'a');
    expect(l.ids()).toEqual([1n]);
  });

  it('a revoked lease leaves nothing behind and hands back its keys', () => {
    const l = lessor();
    l.grant(1n, 60);
    l.grant(2n, 60);
    l.attach(1n, Buffer.from('k1'));
    expect(l.revoke(1n)).toEqual(['k1']);
    expect(l.revoke(2n)).toEqual([]);
    expect(l.lookup(1n)).toBeUndefined();
    expect(l.ids()).toEqual([]);
    expect(l.attached(1n)).toEqual([]);
    // an attach racing the revoke does not bring the lease back
    l.attach(1n, Buffer.from('late'));
    expect(l.lookup(1n)).toBeUndefined();
    expect(l.remaining(1n)).toBe(-1);
  });
});
