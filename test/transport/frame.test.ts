import { describe, expect, it } from 'vitest';
import { decodeMessage, type Message } from '../../src/raftpb/index.js';
import { encodeBatch, FrameDecoder, FrameError, KEEPALIVE_FRAME, MAX_FRAME_BYTES } from '../../src/server/transport/frame.js';
import { membersJson, parseMembersJson } from '../../src/server/transport/members.js';
import { app, heartbeat } from './helpers.js';

function roundTrip(msgs: Message[], cut: (bytes: Buffer) => Buffer[]): Message[] {
  const { bytes, count } = encodeBatch(msgs);
  expect(count).toBe(msgs.length);
  const d = new FrameDecoder();
  const out: Message[] = [];
  for (const piece of cut(Buffer.concat([bytes, KEEPALIVE_FRAME]))) for (const f of d.push(piece)) if (f.length > 0) out.push(decodeMessage(f));
  expect(d.pending).toBe(0);
  return out;
}

describe('frames', () => {
  const msgs = [app(1n, 2n, 5, Buffer.from('hello')), heartbeat(1n, 2n, 3), app(1n, 2n, 6, Buffer.alloc(3000, 7))];

  it('round-trips a batch delivered whole, byte by byte and at every split point', () => {
    expect(roundTrip(msgs, (b) => [b])).toEqual(roundTrip(msgs, (b) => [...b].map((x) => Buffer.from([x]))));
    const { bytes } = encodeBatch(msgs);
    for (let i = 0; i <= bytes.length; i += 37) {
      const got = roundTrip(msgs, (b) => [b.subarray(0, i), b.subarray(i)]);
      expect(got.map((m) => [m.type, m.index, m.commit])).toEqual(msgs.map((m) => [m.type, m.index, m.commit]));
    }
  });

  it('reports keep-alives as empty payloads', () => {
    expect(new FrameDecoder().push(Buffer.concat([KEEPALIVE_FRAME, KEEPALIVE_FRAME]))).toEqual([Buffer.alloc(0), Buffer.alloc(0)]);
  });

  it('refuses a frame longer than the limit before buffering it', () => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(MAX_FRAME_BYTES + 1);
    expect(() => new FrameDecoder().push(head)).toThrow(FrameError);
  });

  it('holds an incomplete frame until the rest arrives', () => {
    const { bytes } = encodeBatch([heartbeat(1n, 2n, 1)]);
    const d = new FrameDecoder();
    expect(d.push(bytes.subarray(0, bytes.length - 1))).toEqual([]);
    expect(d.pending).toBe(bytes.length - 1);
    expect(d.push(bytes.subarray(bytes.length - 1))).toHaveLength(1);
  });

  it('splits a large queue into batches of about a megabyte', () => {
    const queue = Array.from({ length: 100 }, (_, i) => app(1n, 2n, i, Buffer.alloc(100_000)));
    const { bytes, count } = encodeBatch(queue);
    expect(count).toBeGreaterThan(5);
    expect(count).toBeLessThan(100);
    expect(bytes.length).toBeLessThan(1.2 * 1024 * 1024);
  });
});

describe('member list JSON', () => {
  it('parses what real etcd 3.4.23 serves on GET /members', () => {
    const etcd = '[{"id":13668033151171901709,"peerURLs":["http://127.0.0.1:23801"],"name":"a","clientURLs":["http://127.0.0.1:23791"]}]\n';
    expect(parseMembersJson(etcd)).toEqual([
      { id: 13668033151171901709n, name: 'a', peerUrls: ['http://127.0.0.1:23801'], clientUrls: ['http://127.0.0.1:23791'], isLearner: false },
    ]);
  });

  it('round-trips names that look like JSON keys', () => {
    const m = { id: 0xffffffffffffffffn, name: 'x","id":5,"y', peerUrls: ['http://a:1'], clientUrls: [], isLearner: true };
    expect(parseMembersJson(membersJson([m]))).toEqual([m]);
  });

  it('refuses lists that are not members', () => {
    expect(() => parseMembersJson('{}')).toThrow(/not a JSON array/);
    expect(() => parseMembersJson('[{"id":18446744073709551616}]')).toThrow(/valid id/);
    expect(() => parseMembersJson('[{"id":1,"peerURLs":[3]}]')).toThrow(/peerURLs/);
    expect(() => parseMembersJson('[{"id":1')).toThrow();
  });
});
