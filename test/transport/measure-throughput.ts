// Messages per second between two transports on loopback, each in its own process (as two
// members would be). The sender keeps a window of un-acknowledged messages in flight, the
// way raft's inflight limit does; the receiver acknowledges every ACK_EVERY messages.
//
//   npx tsx test/transport/measure-throughput.ts [messages] [entry-bytes]
//
// Under `node --cpu-prof --cpu-prof-dir=DIR --import tsx` both processes write a profile.

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { MessageType, type Message } from '../../src/raftpb/index.js';
import { servePeer } from '../../src/server/listener/index.js';
import { Transport, type RaftHandle } from '../../src/server/transport/index.js';
import { app, noSnapshots } from './helpers.js';

const SENDER = 1n;
const RECEIVER = 2n;
const ACK_EVERY = 256;
const WINDOW = 2048;
const BATCH = 64;

function transport(id: bigint, raft: RaftHandle): Transport {
  return new Transport({
    localId: id, clusterId: 0xc1n, raft, snapshots: noSnapshots, logger: pino({ level: 'silent' }), version: '3.4.23', clusterVersion: () => '3.4.0', members: () => [],
  });
}

function ack(index: number): Message {
  return { type: MessageType.MsgAppResp, to: SENDER, from: RECEIVER, term: 1, logTerm: 0, index, entries: [], commit: 0, reject: false, rejectHint: 0 };
}

async function receiver(): Promise<void> {
  let count = 0;
  let t: Transport;
  const raft: RaftHandle = {
    process(m) {
      count++;
      if (count % ACK_EVERY === 0) t.send([ack(m.index)]);
    },
    check: () => undefined,
    reportUnreachable() {},
    reportSnapshot() {},
  };
  t = transport(RECEIVER, raft);
  const l = await servePeer(new URL('http://127.0.0.1:0'), undefined, t.handler, pino({ level: 'silent' }));
  process.send!({ url: l.url });
  process.on('message', (m: { peer: string } | { stop: true }) => {
    if ('peer' in m) t.addPeer(SENDER, [m.peer]);
    // a clean exit, so that `node --cpu-prof` writes this process's profile too
    else void t.stop().then(() => l.close()).then(() => process.exit(0));
  });
}

async function sender(total: number, entryBytes: number): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ['--receiver'], {
    execArgv: ['--import', 'tsx', ...process.execArgv.filter((a) => a.startsWith('--cpu-prof'))],
  });
  const peerUrl = await new Promise<string>((r) => child.once('message', (m: { url: string }) => r(m.url)));
  let acked = 0;
  let dropped = 0;
  let wake: (() => void) | undefined;
  const t = transport(SENDER, {
    process(m) {
      if (m.type === MessageType.MsgAppResp) acked = m.index + 1;
      wake?.();
    },
    check: () => undefined,
    reportUnreachable() {
      dropped++;
    },
    reportSnapshot() {},
  });
  const l = await servePeer(new URL('http://127.0.0.1:0'), undefined, t.handler, pino({ level: 'silent' }));
  t.addPeer(RECEIVER, [peerUrl]);
  child.send({ peer: l.url });
  while (t.activeSince(RECEIVER) === undefined) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 300)); // the receiver's stream to us too

  const data = Buffer.alloc(entryBytes, 0x61);
  const started = process.hrtime.bigint();
  let sent = 0;
  while (sent < total) {
    if (sent - acked >= WINDOW) {
      await new Promise<void>((r) => (wake = r));
      continue;
    }
    const batch: Message[] = [];
    for (let i = 0; i < BATCH && sent < total; i++, sent++) batch.push(app(SENDER, RECEIVER, sent, data));
    t.send(batch);
    await new Promise((r) => setImmediate(r));
  }
  while (acked < total - (total % ACK_EVERY)) await new Promise<void>((r) => (wake = r));
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(
    `${total} messages, ${entryBytes}-byte entries: ${(total / secs).toFixed(0)} msg/s, ` +
      `${((total * (entryBytes + 40)) / secs / 1e6).toFixed(1)} MB/s, dropped ${dropped}`,
  );
  await t.stop();
  await l.close();
  child.send({ stop: true });
  await new Promise((r) => child.once('exit', r));
}

if (process.argv.includes('--receiver')) void receiver();
else void sender(Number(process.argv[2] ?? 200_000), Number(process.argv[3] ?? 256));
