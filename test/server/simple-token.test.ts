// A simple token is "<prefix>.<raft index>": the index is what a member waits to have
// applied before it looks the token up, so anything else in that place makes the token
// invalid rather than a wait for a made-up index.

import { describe, expect, it } from 'vitest';
import { tokenIndex } from '../../src/server/auth/simple-token.js';

describe('tokenIndex', () => {
  it('reads the raft index after the one dot', () => {
    expect(tokenIndex('QxFpCNbLzVtNhQkd.42')).toBe(42);
    expect(tokenIndex('QxFpCNbLzVtNhQkd.007')).toBe(7);
    expect(tokenIndex('.3')).toBe(3);
    expect(tokenIndex(`x.${Number.MAX_SAFE_INTEGER}`)).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('refuses anything but decimal digits there, and indexes past 2^53', () => {
    for (const token of ['QxFpCNbLzVtNhQkd', 'QxFpCNbLzVtNhQkd.', 'a.1.2', 'a..1', 'a.1x', 'a.-1', 'a.+1', 'a. 1', 'a.1e3', 'a.0x10', 'a.١']) {
      expect(tokenIndex(token), token).toBeUndefined();
    }
    expect(tokenIndex(`x.${Number.MAX_SAFE_INTEGER + 1}`)).toBeUndefined();
    expect(tokenIndex(`x.${'9'.repeat(400)}`)).toBeUndefined();
  });
});
