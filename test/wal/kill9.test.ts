// A real child process appends and acknowledges entries and is killed with
// SIGKILL at random moments, again and again: after every kill, every entry it
// acknowledged is in the WAL, intact, and nothing it did not write is.

import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { WAL } from '../../src/wal/index.js';
import { childScript } from '../child-script.js';
import { entryData } from './fixtures/kill9-data.js';
import { tempDir } from './helpers.js';

const SEGMENT = 64 * 1024;
const ROUNDS = 25;

interface Round {
  acked: number;
  ready: boolean;
  exitedBeforeKill: boolean;
  stderr: string;
}

function runUntilKilled(appender: string, dir: string, term: number, killAfterAcks: number, extraDelayMs: number): Promise<Round> {
  return new Promise((resolve) => {
    const child: ChildProcess = spawn(process.execPath, [appender, dir, String(term), String(SEGMENT)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const round: Round = { acked: 0, ready: false, exitedBeforeKill: false, stderr: '' };
    let killed = false;
    let acks = 0;
    let buf = '';
    const kill = () => {
      if (killed) return;
      killed = true;
      child.kill('SIGKILL');
    };
    child.stdout!.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (killed) continue; // only what was seen before the kill counts
        if (line.startsWith('READY')) {
          round.ready = true;
          if (killAfterAcks === 0) setTimeout(kill, extraDelayMs);
        } else if (line.startsWith('ACK ')) {
          round.acked = Number(line.slice(4));
          if (++acks === killAfterAcks) setTimeout(kill, extraDelayMs);
        }
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (round.stderr += chunk.toString()));
    child.on('exit', () => {
      round.exitedBeforeKill = !killed;
      resolve(round);
    });
    // a kill during start-up (replay, repair, lock takeover) now and then
    if (killAfterAcks < 0) setTimeout(kill, extraDelayMs);
  });
}

describe('kill -9', () => {
  it(`acknowledged entries survive ${ROUNDS} SIGKILLs at random moments; nothing is invented`, async () => {
    const { dir, cleanup } = tempDir('wal-kill9-');
    // also when the test fails or times out (a finally in the body would not run then)
    onTestFinished(cleanup);
    const walDir = join(dir, 'member', 'wal');
    const appender = await childScript(join(__dirname, 'fixtures', 'appender.ts'));
    let seed = 12345;
    const rand = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    let everAcked = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      const mode = rand();
      const killAfterAcks = mode < 0.15 ? -1 : mode < 0.25 ? 0 : 1 + Math.floor(rand() * 60);
      const delay = killAfterAcks < 0 ? 150 + Math.floor(rand() * 500) : Math.floor(rand() * 15);
      const r = await runUntilKilled(appender, walDir, round, killAfterAcks, delay);
      expect(r.exitedBeforeKill, `round ${round}: child died on its own: ${r.stderr}`).toBe(false);
      everAcked = Math.max(everAcked, r.acked);

      // replay in this process (taking over the dead child's lock)
      const w = await WAL.open(walDir, { index: 0, term: 0 });
      const { entries, hardState } = await w.readAll();
      await w.close();
      const last = entries.length === 0 ? 0 : entries[entries.length - 1]!.index;
      expect(last, `round ${round}`).toBeGreaterThanOrEqual(everAcked);
      let prevTerm = 0;
      entries.forEach((e, i) => {
        expect(e.index, `round ${round}`).toBe(i + 1);
        expect(e.term).toBeGreaterThanOrEqual(prevTerm);
        expect(e.term).toBeLessThanOrEqual(round);
        prevTerm = e.term;
        expect(Buffer.from(e.data).equals(Buffer.from(entryData(e.index, e.term))), `entry ${e.index} of round ${round}`).toBe(true);
      });
      expect(hardState.commit).toBeLessThanOrEqual(last);
      // what was acknowledged and then replayed is now the baseline
      everAcked = Math.max(everAcked, last);
    }
    expect(everAcked).toBeGreaterThan(100);
    // the run crossed segment boundaries, so kills also landed around cuts
    expect(readdirSync(walDir).filter((n) => n.endsWith('.wal')).length).toBeGreaterThan(2);
    // 25 child processes: about 40 s on a quiet machine when each started tsx, over 8 minutes
    // at a load average of 20 on two cores (the test waits for each kill, it does not time it)
  }, 900_000);
});
