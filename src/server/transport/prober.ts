// A peer's health as etcd's rafthttp probes it (xiang90/probing): every few seconds a GET
// of the peer's /raft/probing, whose round trip is folded into a smoothed RTT and whose
// answer carries the peer's clock. A monitor reports what the probes show: the smoothed
// RTT into etcd_network_peer_round_trip_time_seconds (the etcd dashboards' "peer round
// trip time" and the mixin's etcdMemberCommunicationSlow alert read it), a warning while
// the peer does not answer, and one when this member's clock runs ahead of the peer's.
//
// etcd runs two probers per peer, one per HTTP round tripper it keeps (raft messages,
// snapshots), over the same URLs; etcd-ts dials both kinds with the same TLS settings,
// so one prober stands for both and reports under the raft messages' name.

import http from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import { formatDuration } from '../../wal/logger.js';
import { idHex16 } from '../ids.js';
import type { TlsContext } from '../tls.js';
import { peerRequest, readText } from './dial.js';
import { PROBING_PATH } from './headers.js';
import { READ_TIMEOUT_MS } from './stream-reader.js';

export interface ProberTimings {
  /** between two probes */
  readonly probeMs: number;
  /** between two reports while the peer answers */
  readonly monitorMs: number;
  /** before the first report, and between reports while the peer does not answer */
  readonly errorMs: number;
}

/** etcd's: a probe every ConnReadTimeout - 1 s (so it keeps the connection alive), reports every 30 s, 5 s while unhealthy. */
export const ETCD_PROBER_TIMINGS: ProberTimings = { probeMs: READ_TIMEOUT_MS - 1000, monitorMs: 30_000, errorMs: 5_000 };

/** The smoothing of the RTT: SRTT = (1 - α) SRTT + α RTT, as TCP's. */
const ALPHA = 0.125;
/** A clock this far ahead of the peer's is logged (etcd's bound). */
const MAX_CLOCK_DRIFT_MS = 1000;
/** The name etcd's logs give the prober of its raft-message round tripper. */
const ROUND_TRIPPER_NAME = 'ROUND_TRIPPER_RAFT_MESSAGE';
/** An answer is a line of JSON; anything longer is not one. */
const ANSWER_LIMIT = 1024;

export interface ProberContext {
  readonly tls: TlsContext | undefined;
  readonly log: Logger;
  readonly timings: ProberTimings;
  /** The smoothed round trip, in seconds, at every report. */
  readonly onRoundTrip: (seconds: number) => void;
}

/** What the last probes showed; `healthy` only once a probe was answered, until one fails. */
type Health = { healthy: true } | { healthy: false; error: string | undefined };

export class PeerProber {
  private srttMs = 0;
  private clockDiffMs = 0;
  private health: Health = { healthy: false, error: undefined };
  /** the URL probed, kept until a probe of it fails (Go's prober pins one) */
  private pinned = 0;
  private inFlight: http.ClientRequest | undefined;
  private readonly agent: http.Agent;
  private readonly probeTimer: NodeJS.Timeout;
  private monitorTimer: NodeJS.Timeout;

  constructor(
    private readonly peerId: bigint,
    private readonly urls: () => readonly string[],
    private readonly ctx: ProberContext,
  ) {
    // One kept-alive connection, as Go's round tripper keeps: the RTT is a request's,
    // not a TCP or TLS handshake's.
    const opts = { keepAlive: true, maxSockets: 1 };
    this.agent = ctx.tls !== undefined ? new https.Agent({ ...ctx.tls.client, ...opts }) : new http.Agent(opts);
    this.probeTimer = setInterval(() => this.probe(), ctx.timings.probeMs);
    this.probeTimer.unref();
    this.monitorTimer = this.scheduleReport(ctx.timings.errorMs);
  }

  stop(): void {
    clearInterval(this.probeTimer);
    clearTimeout(this.monitorTimer);
    this.inFlight?.destroy();
    this.agent.destroy();
  }

  private probe(): void {
    // A probe still waiting for its answer is not doubled (Go's ticker drops the ticks a
    // busy receiver misses).
    if (this.inFlight !== undefined) return;
    const urls = this.urls();
    if (urls.length === 0) return;
    const url = urls[this.pinned % urls.length]!;
    const started = performance.now();
    let req: http.ClientRequest;
    try {
      req = peerRequest(url, PROBING_PATH, 'GET', {}, this.ctx.tls, this.agent);
    } catch (err) {
      this.failed((err as Error).message);
      return;
    }
    this.inFlight = req;
    let responded = false;
    let settled = false;
    const settle = (error: string | undefined, peerNowMs?: number): void => {
      if (settled) return;
      settled = true;
      this.inFlight = undefined;
      if (error !== undefined) this.failed(error);
      else this.answered(performance.now() - started, peerNowMs!);
    };
    req.setTimeout(READ_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${READ_TIMEOUT_MS} ms`)));
    req.on('error', (err) => settle(err.message));
    req.on('close', () => {
      if (!responded) settle('the connection closed');
    });
    req.on('response', (res) => {
      responded = true;
      if (res.statusCode !== 200) {
        res.resume();
        settle(`got unexpected HTTP status code ${res.statusCode} ${res.statusMessage ?? ''} from ${url}${PROBING_PATH}`.trimEnd());
        return;
      }
      void readText(res, ANSWER_LIMIT).then((text) => {
        const peerNowMs = probingAnswer(text);
        if (peerNowMs === undefined) settle(`not a probing answer from ${url}${PROBING_PATH}`);
        else settle(undefined, peerNowMs);
      });
    });
    req.end();
  }

  private answered(rttMs: number, peerNowMs: number): void {
    this.health = { healthy: true };
    this.srttMs = (1 - ALPHA) * this.srttMs + ALPHA * rttMs;
    // The peer read its clock about half a round trip before the answer arrived.
    this.clockDiffMs = Date.now() - peerNowMs - this.srttMs / 2;
  }

  private failed(error: string): void {
    this.health = { healthy: false, error };
    this.pinned++;
  }

  private scheduleReport(ms: number): NodeJS.Timeout {
    const t = setTimeout(() => this.report(), ms);
    t.unref();
    return t;
  }

  private report(): void {
    const rtt = this.srttMs === 0 ? '0s' : formatDuration(this.srttMs / 1000);
    const fields = { 'round-tripper-name': ROUND_TRIPPER_NAME, 'remote-peer-id': idHex16(this.peerId) };
    if (!this.health.healthy) {
      const error = this.health.error;
      this.ctx.log.warn({ ...fields, rtt, ...(error !== undefined ? { error } : {}) }, 'prober detected unhealthy status');
    }
    if (this.clockDiffMs > MAX_CLOCK_DRIFT_MS) {
      this.ctx.log.warn({ ...fields, 'clock-drift': formatDuration(this.clockDiffMs / 1000), rtt }, 'prober found high clock drift');
    }
    this.ctx.onRoundTrip(this.srttMs / 1000);
    this.monitorTimer = this.scheduleReport(this.health.healthy ? this.ctx.timings.monitorMs : this.ctx.timings.errorMs);
  }
}

/**
 * The peer's clock (ms since the epoch) from its answer, `{"OK":true,"Now":"<RFC 3339>"}`
 * as etcd's probing handler writes it; undefined for anything else.
 */
function probingAnswer(text: string): number | undefined {
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof answer !== 'object' || answer === null) return undefined;
  const { OK, Now } = answer as { OK?: unknown; Now?: unknown };
  if (OK !== true || typeof Now !== 'string') return undefined;
  const ms = Date.parse(Now);
  return Number.isNaN(ms) ? undefined : ms;
}
