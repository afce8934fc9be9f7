// How the gateway picks an endpoint for a connection (tcpproxy.ts): SRV priority first,
// then weight, then turns. The random draws are given, so that each pick is known.

import { describe, expect, it } from 'vitest';
import { endpointPicker } from '../../src/server/tcpproxy.js';

const ep = (name: string, priority: number, weight: number) => ({ name, priority, weight });
const all = () => true;
/** draws that return `values` in turn */
const draws = (...values: number[]) => () => values.shift() ?? 0;

describe('endpointPicker', () => {
  it('takes turns among endpoints of equal priority and no weight (--endpoints)', () => {
    const pick = endpointPicker([ep('a', 0, 0), ep('b', 0, 0), ep('c', 0, 0)]);
    expect([1, 2, 3, 4].map(() => pick(all)?.name)).toEqual(['a', 'b', 'c', 'a']);
  });

  it('keeps to the lowest priority with an active endpoint', () => {
    const endpoints = [ep('backup', 10, 0), ep('primary', 0, 0), ep('last', 20, 0)];
    const pick = endpointPicker(endpoints);
    expect([1, 2, 3].map(() => pick(all)?.name)).toEqual(['primary', 'primary', 'primary']);
    expect(pick((e) => e.name !== 'primary')?.name).toBe('backup');
    expect(pick((e) => e.name === 'last')?.name).toBe('last');
    expect(pick(() => false)).toBeUndefined();
  });

  it('picks by weight within the priority: a draw falls in the share of each weight', () => {
    const endpoints = [ep('light', 0, 1), ep('heavy', 0, 3)];
    // shares of 4: [0, 1) light, [1, 4) heavy
    const pick = endpointPicker(endpoints, draws(0 / 4, 1 / 4, 3.99 / 4, 0.5 / 4));
    expect([1, 2, 3, 4].map(() => pick(all)?.name)).toEqual(['light', 'heavy', 'heavy', 'light']);
  });

  it('gives an endpoint of weight 0 beside weighted ones one pick in a hundred', () => {
    const endpoints = [ep('weighted', 0, 5), ep('zero', 0, 0)];
    // first draw: the one-in-a-hundred chance (1/100 hits it); otherwise a second draw for the weight
    const pick = endpointPicker(endpoints, draws(1 / 100, 0 / 100, 0.5));
    expect(pick(all)?.name).toBe('zero');
    expect(pick(all)?.name).toBe('weighted');
  });
});
