import { describe, expect, it } from 'vitest';
import { Cluster } from './harness.js';

describe('smoke', () => {
  it('elects a leader and replicates', () => {
    const c = new Cluster([1n, 2n, 3n]);
    c.stabilize();
    c.elect(1n);
    expect(c.leader()?.id).toBe(1n);
    c.propose(1n, 'a');
    c.propose(2n, 'b');
    c.stabilize();
    for (const n of c.nodes.values()) expect(n.applied).toEqual(['a', 'b']);
  });
});
