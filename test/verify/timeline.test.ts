import { describe, expect, it } from 'vitest';
import { checkHistory } from '../../verify/check.js';
import { renderTimeline } from '../../verify/timeline.js';
import { HistoryBuilder, get, gotKvs, kv, put, putOk } from './builders.js';

describe('timeline', () => {
  it('draws the longest linearization and the request that cannot follow it', () => {
    const b = new HistoryBuilder();
    b.op(0, 0, 1, put('g/a', '1'), putOk(2));
    b.op(0, 2, 3, put('g/a', '2'), putOk(3));
    b.op(1, 4, 5, get('g/a'), gotKvs(3, kv('g/a', '1', 2, 2, 1)));
    const report = checkHistory(b.history, { useReference: false });
    const html = renderTimeline(b.history, report);
    expect(html).toContain('Verdict: INVALID');
    expect(html).toContain('Not linearizable: partition g/');
    expect(html).toContain('<svg');
    // the stale get is drawn red, the two puts green and numbered in order
    expect(html).toMatch(/fill="#e33"[^>]*\/>\s*<text[^>]*>get g\/a/);
    expect(html).toContain('#1 put g/a=1');
    expect(html).toContain('#2 put g/a=2');
  });
});
