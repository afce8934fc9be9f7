// The merged permission intervals answer as etcd's interval trees do: a single key is
// allowed when some permission holds it, a range only when the permissions together
// cover all of it (the cases of etcd's range_perm_cache_test.go, and merging).

import { describe, expect, it } from 'vitest';
import { type Permission, PermType, RangePermissions } from '../../src/server/auth/range-perms.js';

const b = (s: string) => Buffer.from(s);
const perm = (permType: PermType, key: string, rangeEnd = ''): Permission => ({ permType, key: b(key), rangeEnd: b(rangeEnd) });

describe('RangePermissions', () => {
  it('a key permission allows that key alone', () => {
    const p = new RangePermissions([perm(PermType.READ, 'foo')]);
    expect(p.permits('read', b('foo'), b(''))).toBe(true);
    expect(p.permits('read', b('foo0'), b(''))).toBe(false);
    expect(p.permits('read', b('fo'), b(''))).toBe(false);
    expect(p.permits('write', b('foo'), b(''))).toBe(false);
    // [foo, foo\0) is that key as a range
    expect(p.permits('read', b('foo'), Buffer.from('foo\0'))).toBe(true);
    expect(p.permits('read', b('foo'), b('foo1'))).toBe(false);
  });

  it('ranges must be covered whole, by one permission or by several that touch', () => {
    const p = new RangePermissions([perm(PermType.READWRITE, 'a', 'c'), perm(PermType.READWRITE, 'c', 'e'), perm(PermType.READWRITE, 'x', 'z')]);
    expect(p.permits('read', b('a'), b('e'))).toBe(true);
    expect(p.permits('write', b('b'), b('d'))).toBe(true);
    expect(p.permits('read', b('a'), b('f'))).toBe(false);
    expect(p.permits('read', b('d'), b('y'))).toBe(false);
    expect(p.permits('read', b('e'), b(''))).toBe(false);
    expect(p.permits('read', b('x'), b('z'))).toBe(true);
  });

  it('"\\0" as range end means every key from the key on, in permissions and requests', () => {
    const p = new RangePermissions([perm(PermType.READ, 'm', '\0')]);
    expect(p.permits('read', b('m'), Buffer.of(0))).toBe(true);
    expect(p.permits('read', b('zzzz'), b(''))).toBe(true);
    expect(p.permits('read', b('n'), b('\xff\xff'))).toBe(true);
    expect(p.permits('read', b('l'), Buffer.of(0))).toBe(false);
    const bounded = new RangePermissions([perm(PermType.READ, 'm', 'q')]);
    expect(bounded.permits('read', b('m'), Buffer.of(0))).toBe(false);
  });

  it('READ and WRITE are kept apart; READWRITE is both; an unknown type grants nothing', () => {
    const p = new RangePermissions([perm(PermType.READ, 'r'), perm(PermType.WRITE, 'w'), { permType: 7 as PermType, key: b('u'), rangeEnd: b('') }]);
    expect([p.permits('read', b('r'), b('')), p.permits('write', b('r'), b(''))]).toEqual([true, false]);
    expect([p.permits('read', b('w'), b('')), p.permits('write', b('w'), b(''))]).toEqual([false, true]);
    expect([p.permits('read', b('u'), b('')), p.permits('write', b('u'), b(''))]).toEqual([false, false]);
  });

  it('no permissions allow nothing', () => {
    const p = new RangePermissions([]);
    expect(p.permits('read', b('a'), b(''))).toBe(false);
    expect(p.permits('write', b('a'), b('b'))).toBe(false);
  });
});
