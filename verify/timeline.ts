// An HTML page that shows each anomaly on a timeline: one lane per client, one
// bar per request from call to return (a request with an unknown outcome runs to
// the right edge, dashed), faults as shaded bands. For a linearizability failure
// the longest linearizable prefix is numbered in order (green), the request that
// could not be placed is red and its concurrent rivals orange.

import * as fs from 'node:fs';
import type { Anomaly } from './anomaly.js';
import type { CheckReport, LinearizationFailure } from './check.js';
import type { History, NemesisEvent, Operation, WatchSession } from './history.js';
import { describeOp } from './model.js';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** how many requests around the anomaly to draw */
const WINDOW_OPS = 80;

interface Marks {
  order: Map<number, number>;
  bad: Set<number>;
  rivals: Set<number>;
}

function svgTimeline(ops: Operation[], nemesis: NemesisEvent[], marks: Marks): string {
  if (ops.length === 0) return '<p>(no requests)</p>';
  const finite = ops.flatMap((o) => [o.call, ...(Number.isFinite(o.return) ? [o.return] : [])]);
  const t0 = Math.min(...finite);
  const t1 = Math.max(...finite) + 1;
  const clients = [...new Set(ops.map((o) => o.client))].sort((a, b) => a - b);
  const lane = new Map(clients.map((c, i) => [c, i]));
  const W = 1400;
  const left = 90;
  const laneH = 26;
  const H = clients.length * laneH + 40;
  const x = (t: number): number => left + ((t - t0) / (t1 - t0)) * (W - left - 10);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="monospace" font-size="10">`);
  for (const e of nemesis) {
    if (e.time < t0 || e.time > t1) continue;
    parts.push(`<line x1="${x(e.time)}" y1="0" x2="${x(e.time)}" y2="${H - 20}" stroke="#a0a" stroke-dasharray="2,2"><title>${esc(`${e.time.toFixed(1)}ms ${e.kind}: ${e.detail}`)}</title></line>`);
  }
  clients.forEach((c, i) => {
    parts.push(`<text x="4" y="${i * laneH + 17}">client ${c}</text>`);
    parts.push(`<line x1="${left}" y1="${i * laneH + laneH}" x2="${W}" y2="${i * laneH + laneH}" stroke="#eee"/>`);
  });
  for (const op of ops) {
    const y = lane.get(op.client)! * laneH + 4;
    const xa = x(op.call);
    const xb = Number.isFinite(op.return) ? Math.max(x(op.return), xa + 3) : W - 4;
    const order = marks.order.get(op.id);
    const fill = marks.bad.has(op.id) ? '#e33' : marks.rivals.has(op.id) ? '#f93' : order !== undefined ? '#6c6' : '#bbb';
    const dash = op.output === null ? ' stroke-dasharray="4,2"' : '';
    const label = (order !== undefined ? `#${order} ` : '') + describeOp(op);
    parts.push(
      `<g><title>${esc(`op ${op.id}, client ${op.client} @${op.endpoint}, ${op.call.toFixed(2)}-${Number.isFinite(op.return) ? op.return.toFixed(2) : '∞'}ms\n${describeOp(op)}`)}</title>` +
        `<rect x="${xa}" y="${y}" width="${xb - xa}" height="${laneH - 8}" fill="${fill}" fill-opacity="0.6" stroke="#333"${dash}/>` +
        `<text x="${xa + 2}" y="${y + 12}">${esc(label.slice(0, Math.max(0, Math.floor((xb - xa) / 6))))}</text></g>`,
    );
  }
  parts.push(`<text x="${left}" y="${H - 6}">${t0.toFixed(1)}ms</text><text x="${W - 90}" y="${H - 6}">${t1.toFixed(1)}ms</text>`);
  parts.push('</svg>');
  return parts.join('\n');
}

/** The requests around `center` (by call time) in `pool`. */
function around(pool: Operation[], center: Operation[], n = WINDOW_OPS): Operation[] {
  if (center.length === 0) return [];
  const lo = Math.min(...center.map((o) => o.call));
  const hi = Math.max(...center.map((o) => (Number.isFinite(o.return) ? o.return : o.call)));
  const sorted = [...pool].sort((a, b) => Math.abs(mid(a) - (lo + hi) / 2) - Math.abs(mid(b) - (lo + hi) / 2));
  const picked = new Set([...center, ...sorted.slice(0, n)]);
  return [...picked].sort((a, b) => a.call - b.call);
}

const mid = (o: Operation): number => (Number.isFinite(o.return) ? (o.call + o.return) / 2 : o.call);

function failureSection(f: LinearizationFailure, nemesis: NemesisEvent[]): string {
  const ops = f.operations;
  const r = f.result;
  const order = new Map<number, number>();
  r.longest.forEach((idx, i) => order.set(ops[idx]!.id, i + 1));
  const blocking = ops[r.blocking]!;
  const rivals = r.candidates.filter((c) => c !== r.blocking).map((c) => ops[c]!);
  const shown = around(ops, [blocking, ...rivals]);
  const tail = r.longest.slice(-12).map((idx) => ops[idx]!);
  return `
<h2>Not linearizable: partition ${esc(f.partition)}</h2>
<p>${r.longest.length} of ${ops.length} requests linearized; then <b style="color:#c00">${esc(describeOp(blocking))}</b> (client ${blocking.client}) cannot take effect.</p>
<p>Last requests of the longest linearization, in order:</p>
<ol start="${r.longest.length - tail.length + 1}">${tail.map((o) => `<li>${esc(describeOp(o))} <small>(client ${o.client}, ${o.call.toFixed(1)}-${Number.isFinite(o.return) ? o.return.toFixed(1) : '∞'}ms)</small></li>`).join('')}</ol>
${svgTimeline(shown, nemesis, { order, bad: new Set([blocking.id]), rivals: new Set(rivals.map((o) => o.id)) })}`;
}

function anomalySection(a: Anomaly, h: History): string {
  const involved = a.ops.map((id) => h.operations[id]).filter((o): o is Operation => o !== undefined);
  const watches = a.watches.map((id) => h.watches[id]).filter((w): w is WatchSession => w !== undefined);
  let body = `<h3>[${esc(a.kind)}]</h3><p>${esc(a.message)}</p>`;
  if (involved.length > 0) {
    body += svgTimeline(around(h.operations, involved, 30), h.nemesis, { order: new Map(), bad: new Set(involved.map((o) => o.id)), rivals: new Set() });
  }
  for (const w of watches) body += watchDetail(w, h.nemesis);
  return body;
}

function watchDetail(w: WatchSession, nemesis: NemesisEvent[]): string {
  const end = w.closed > 0 ? w.closed : Infinity;
  const faults = nemesis.filter((e) => e.time >= w.opened - 5000 && e.time <= end).map((e) => `${e.time.toFixed(1)}ms ${e.kind}: ${e.detail}`);
  const lines = w.responses.map((r) => {
    const flags = [r.created ? 'created' : '', r.canceled ? 'canceled' : '', r.progress ? 'progress' : '', r.compactRevision > 0 ? `compacted@${r.compactRevision}` : '']
      .filter((x) => x)
      .join(' ');
    const evs = r.events.map((e) => (e.type === 'PUT' ? `PUT ${e.kv.key}=${e.kv.value}@${e.kv.modRevision}` : `DEL ${e.kv.key}@${e.kv.modRevision}`)).join(', ');
    return `${r.time.toFixed(1)}ms rev=${r.headerRevision} ${flags} ${evs}`;
  });
  return (
    `<p>watch ${w.id} opened at ${w.opened.toFixed(1)}ms, closed at ${w.closed.toFixed(1)}ms (${esc(w.end)}); faults around it:</p><pre>${esc(faults.join('\n') || '(none)')}</pre>` +
    `<details><summary>its ${w.responses.length} responses</summary><pre>${esc(lines.join('\n'))}</pre></details>`
  );
}

export function renderTimeline(h: History, report: CheckReport): string {
  const sections = report.failures.slice(0, 3).map((f) => failureSection(f, h.nemesis));
  const others = report.anomalies.filter((a) => a.kind !== 'nonlinearizable').slice(0, 30).map((a) => anomalySection(a, h));
  const nemesis = h.nemesis.map((e) => `${e.time.toFixed(0)}ms ${e.kind}: ${e.detail}`).join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>etcd-ts jepsen: ${report.verdict}</title>
<style>body{font-family:sans-serif;margin:20px} svg{border:1px solid #ccc;margin:8px 0} pre{background:#f6f6f6;padding:6px;overflow:auto}</style></head><body>
<h1>Verdict: ${esc(report.verdict.toUpperCase())}</h1>
<p>${report.stats.operations} requests, ${report.stats.failed} with unknown outcome, ${report.stats.watches} watches, last revision ${report.stats.lastRevision}.
Bars: green = linearized (numbered in order), red = the anomaly, orange = concurrent rivals, grey = other; dashed = unknown outcome; purple lines = faults. Hover for details.</p>
<ul>${report.anomalies.map((a) => `<li>[${esc(a.kind)}] ${esc(a.message)}</li>`).join('')}</ul>
${sections.join('\n')}
${others.join('\n')}
<h2>Faults</h2><pre>${esc(nemesis || '(none)')}</pre>
</body></html>`;
}

export function writeTimeline(file: string, h: History, report: CheckReport): void {
  fs.writeFileSync(file, renderTimeline(h, report));
}
