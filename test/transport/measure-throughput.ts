// Messages per second between two transports on loopback, each in its own process (as two
// members would be). The sender keeps a window of un-acknowledged messages in flight, the
// way raft's inflight limit does; the receiver acknowledges every ACK_EVERY messages.
//
//   npx tsx test/transport/measure-throughput.ts [messages] [entry-bytes] [plain|mtls|cn]
//
// mtls: peers on mutual TLS (--peer-client-cert-auth); cn: the same with
// --peer-cert-allowed-cn, whose listeners run TLS over a SocketStream (see tls-refusal.ts).
// Under `node --cpu-prof --cpu-prof-dir=DIR --import tsx` both processes write a profile.

import { fork } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import pino from 'pino';
import { MessageType, type Message } from '../../src/raftpb/index.js';
import { servePeer } from '../../src/server/listener/index.js';
import { loadTls, type TlsContext } from '../../src/server/tls.js';
import { makePki } from '../listener/helpers.js';
import { Transport, type RaftHandle } from '../../src/server/transport/index.js';
import { app, noSnapshots } from './helpers.js';

const SENDER = 1n;
const RECEIVER = 2n;
const ACK_EVERY = 256;
const WINDOW = 2048;
const BATCH = 64;

type Mode = 'plain' | 'mtls' | 'cn';

/** Both members use the PKI's server certificate (CN etcd-server) as their peer identity. */
function peerTls(mode: Mode, pkiDir: string): Promise<TlsContext | undefined> {
  if (mode === 'plain') return Promise.resolve(undefined);
  const f = (n: string): string => path.join(pkiDir, n);
  return loadTls(
    { certFile: f('server.pem'), keyFile: f('server-key.pem'), trustedCaFile: f('ca.pem'), clientCertAuth: true, autoTls: false, ...(mode === 'cn' ? { allowedCn: 'etcd-server' } : {}) },
    '/nonexistent',
    [],
    () => undefined,
  );
}

function transport(id: bigint, raft: RaftHandle, tls: TlsContext | undefined): Transport {
  return new Transport({
    localId: id, clusterId: 0xc1n, raft, snapshots: noSnapshots, logger: pino({ level: 'silent' }), version: '3.4.23', clusterVersion: () => '3.4.0', members: () => [],
    ...(tls !== undefined ? { tls } : {}),
  });
}

const scheme = (tls: TlsContext | undefined): string => (tls === undefined ? 'http' : 'https');

function ack(index: number): Message {
  return { type: MessageType.MsgAppResp, to: SENDER, from: RECEIVER, term: 1, logTerm: 0, index, entries: [], commit: 0, reject: false, rejectHint: 0 };
}

async function receiver(mode: Mode, pkiDir: string): Promise<void> {
  const tls = await peerTls(mode, pkiDir);
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
  t = transport(RECEIVER, raft, tls);
  const l = await servePeer(new URL(`${scheme(tls)}://127.0.0.1:0`), tls, t.handler, pino({ level: 'silent' }));
  process.send!({ url: l.url });
  process.on('message', (m: { peer: string } | { stop: true }) => {
    if ('peer' in m) t.addPeer(SENDER, [m.peer]);
    // a clean exit, so that `node --cpu-prof` writes this process's profile too
    else void t.stop().then(() => l.close()).then(() => process.exit(0));
  });
}

async function sender(total: number, entryBytes: number, mode: Mode): Promise<void> {
  const pkiDir = makePki().dir;
  const tls = await peerTls(mode, pkiDir);
  const child = fork(fileURLToPath(import.meta.url), ['--receiver', mode, pkiDir], {
    execArgv: ['--import', 'tsx', ...process.execArgv.filter((a) => a.startsWith('--cpu-prof'))],
  });
  const peerUrl = await new Promise<string>((r) => child.once('message', (m: { url: string }) => r(m.url)));
  let acked = 0;
  let dropped = 0;
  let wake: (() => void) | undefined;
  const t = transport(
    SENDER,
    {
    process(m) {
      if (m.type === MessageType.MsgAppResp) acked = m.index + 1;
      wake?.();
    },
    check: () => undefined,
    reportUnreachable() {
      dropped++;
    },
    reportSnapshot() {},
    },
    tls,
  );
  const l = await servePeer(new URL(`${scheme(tls)}://127.0.0.1:0`), tls, t.handler, pino({ level: 'silent' }));
  t.addPeer(RECEIVER, [peerUrl]);
  child.send({ peer: l.url });
  while (t.activeSince(RECEIVER) === undefined) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 300)); // the receiver's stream to us too

  const data = Buffer.alloc(entryBytes, 0x61);
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
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
  const used = process.cpuUsage(cpu);
  console.log(
    `${mode}: ${total} messages, ${entryBytes}-byte entries: ${(total / secs).toFixed(0)} msg/s, ` +
      `${((total * (entryBytes + 40)) / secs / 1e6).toFixed(1)} MB/s, sender CPU ${((used.user + used.system) / total).toFixed(1)} µs/msg, dropped ${dropped}`,
  );
  await t.stop();
  await l.close();
  child.send({ stop: true });
  await new Promise((r) => child.once('exit', r));
  rmSync(pkiDir, { recursive: true, force: true });
}

const at = process.argv.indexOf('--receiver');
if (at >= 0) void receiver(process.argv[at + 1] as Mode, process.argv[at + 2]!);
else void sender(Number(process.argv[2] ?? 200_000), Number(process.argv[3] ?? 256), (process.argv[4] ?? 'plain') as Mode);
