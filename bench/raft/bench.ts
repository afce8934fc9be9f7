// Raft throughput: committed entries per second of a 3-member in-memory cluster,
// driven on one core the way the server drives it — each loop turn the leader takes
// a batch of proposals, then every member handles one Ready (persist to its
// MemoryStorage, send, apply, advance) and the messages are delivered.
//
//   npm run bench:raft              batches of 1 and 256, 100-byte entries
//   npm run bench:raft -- 256 500000   one batch size, that many entries

import { EntryType, type Message, decodeConfChange } from '../../src/raftpb/index.js';
import { MemoryStorage, RawNode } from '../../src/raft/index.js';
import { seededRandom as rng } from '../../src/pkg/rng.js';

interface Member {
  id: bigint;
  rn: RawNode;
  storage: MemoryStorage;
  applied: number;
}

function cluster(): Member[] {
  const ids = [1n, 2n, 3n];
  return ids.map((id) => {
    const storage = new MemoryStorage();
    const rn = new RawNode({ id, electionTick: 10, heartbeatTick: 1, storage, random: rng(Number(id)) });
    rn.bootstrap(ids.map((p) => ({ id: p })));
    return { id, rn, storage, applied: 0 };
  });
}

/** One Ready per member, then deliver everything sent. Returns whether anything happened. */
function turn(members: Member[], byId: Map<bigint, Member>, inbox: Message[]): boolean {
  let moved = false;
  for (const m of members) {
    if (!m.rn.hasReady()) continue;
    moved = true;
    const rd = m.rn.ready();
    if (rd.snapshot !== undefined) m.storage.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) m.storage.append(rd.entries);
    if (rd.hardState !== undefined) m.storage.setHardState(rd.hardState);
    for (const msg of rd.messages) inbox.push(msg);
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.ConfChange) m.rn.applyConfChange(decodeConfChange(e.data));
      else if (e.data.length > 0) m.applied++;
    }
    m.rn.advance(rd);
  }
  if (inbox.length > 0) moved = true;
  const batch = inbox.splice(0, inbox.length);
  for (const msg of batch) byId.get(msg.to)!.rn.step(msg);
  return moved;
}

function run(batch: number, total: number): { perSec: number; ms: number } {
  const members = cluster();
  const byId = new Map(members.map((m) => [m.id, m]));
  const inbox: Message[] = [];
  while (turn(members, byId, inbox));
  members[0]!.rn.campaign();
  while (turn(members, byId, inbox));
  const leader = members[0]!;
  const payload = new Uint8Array(100).fill(120);
  const t0 = process.hrtime.bigint();
  let proposed = 0;
  while (leader.applied < total) {
    for (let i = 0; i < batch && proposed < total; i++, proposed++) leader.rn.propose(payload);
    turn(members, byId, inbox);
  }
  // Everyone applied everything: the followers' work is part of the cost.
  while (members.some((m) => m.applied < total)) turn(members, byId, inbox);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { perSec: Math.round((total / ms) * 1000), ms };
}

const args = process.argv.slice(2).map(Number);
const plans: Array<[number, number]> = args.length > 0 ? [[args[0]!, args[1] ?? 200_000]] : [
  [1, 50_000],
  [256, 500_000],
];
// A short warm-up so the JIT has compiled the hot paths.
run(256, 50_000);
for (const [batch, total] of plans) {
  const { perSec, ms } = run(batch, total);
  console.log(
    `raft 3-member in-memory, 100-byte entries, batch ${String(batch).padStart(3)}: ${perSec.toLocaleString('en-US')} committed entries/s (${total.toLocaleString('en-US')} in ${ms.toFixed(0)} ms)`,
  );
}
