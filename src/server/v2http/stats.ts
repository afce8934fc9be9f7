// /v2/stats/store|self|leader, as etcd 3.4 serves them: the v2 store's operation counts,
// this member's identity and view of the leader, and (on the leader) its followers.

import type http from 'node:http';
import { idHex } from '../ids.js';
import type { V2StoreStats } from '../v2store/index.js';
import { allowMethod, writeHttpError } from './respond.js';

export interface StatsDeps {
  storeStats(): V2StoreStats;
  name: string;
  memberId: bigint;
  /** ms since the epoch when this member started */
  startTime: number;
  isLeader(): boolean;
  leader(): bigint;
  /** ms since the epoch since when the current leader has been known here */
  leaderSince(): number;
  /** the other voting members, on the leader */
  followers(): bigint[];
}

/** Go's time.Time JSON (RFC 3339 with nanoseconds) for a ms timestamp. */
function goTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.?0*Z$/, 'Z');
}

/** Go's Duration.String for ms, as etcd shows the leader's uptime. */
function goDuration(ms: number): string {
  const s = ms / 1000;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const secText = `${Number(sec.toFixed(9))}s`;
  if (h > 0) return `${h}h${m}m${secText}`;
  if (m > 0) return `${m}m${secText}`;
  return secText;
}

function send(res: http.ServerResponse, body: unknown): void {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

export function statsHandlers(deps: StatsDeps): Map<string, (req: http.IncomingMessage, res: http.ServerResponse) => void> {
  return new Map([
    [
      '/v2/stats/store',
      (req, res) => {
        if (allowMethod(req, res, 'GET')) send(res, deps.storeStats());
      },
    ],
    [
      '/v2/stats/self',
      (req, res) => {
        if (!allowMethod(req, res, 'GET')) return;
        const lead = deps.leader();
        const since = deps.leaderSince();
        send(res, {
          name: deps.name,
          id: idHex(deps.memberId),
          state: deps.isLeader() ? 'StateLeader' : 'StateFollower',
          startTime: goTime(deps.startTime),
          leaderInfo: { leader: lead === 0n ? '0' : idHex(lead), uptime: goDuration(Date.now() - since), startTime: goTime(since) },
        });
      },
    ],
    [
      '/v2/stats/leader',
      (req, res) => {
        if (!allowMethod(req, res, 'GET')) return;
        if (!deps.isLeader()) return writeHttpError(res, 403, 'not current leader');
        send(res, { leader: idHex(deps.memberId), followers: Object.fromEntries(deps.followers().map((id) => [idHex(id), {}])) });
      },
    ],
  ]);
}
