// A client's request is decoded once, at the gRPC edge, and the bytes it came in go into
// the raft entry untouched: InternalRaftRequest's put field is a length-delimited
// PutRequest, so the entry is the header followed by the field's tag, the length and the
// client's own bytes. Checked in the WAL of a member that took a put over the wire.

import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InternalRaftRequest } from '../../src/server/pb.js';
import { WAL } from '../../src/wal/index.js';
import { cleanup, ctl, startMember, stopMember } from './harness.js';
import { bytesField, concat, frame, rawCall, tag, varint, varintField } from './raw-grpc.js';

afterAll(cleanup);

describe('a raft entry', () => {
  it("carries a put's PutRequest as the client encoded it", async () => {
    const m = await startMember();
    // value before key, an explicit zero lease and a field etcd does not know: an
    // encoder writing the decoded message out again would give other bytes
    const client = concat(bytesField(2, 'verbatim-value'), bytesField(1, 'verbatim-key'), varintField(3, 0), varintField(99, 7));
    const r = await rawCall(m.clientUrl, { path: '/etcdserverpb.KV/Put', body: frame(client) });
    expect(r.code).toBe(0);
    expect(await ctl(m.clientUrl, ['get', 'verbatim-key', '--print-value-only'])).toBe('verbatim-value\n');
    await stopMember(m);

    const wal = await WAL.open(path.join(m.dataDir, 'member', 'wal'), { index: 0, term: 0 }, {});
    const { entries } = await wal.readAll();
    await wal.close();
    const puts = entries.filter((e) => e.data.length > 0 && Buffer.from(e.data).includes('verbatim-key'));
    expect(puts).toHaveLength(1);
    const data = Buffer.from(puts[0]!.data);
    const field = concat(tag(4, 2), varint(client.length), client);
    expect(data.subarray(data.length - field.length)).toEqual(field);
    // and what precedes it is the header alone
    const before = InternalRaftRequest.toObject(InternalRaftRequest.decode(data.subarray(0, data.length - field.length)));
    expect(Object.keys(before)).toEqual(['header']);
  }, 60_000);
});
