// freePort across processes: vitest's workers and the processes they start each draw ports,
// and a port one of them was handed must not be handed to another while it lives (two
// workers once drew the same one, and a member failed with "bind: address already in use").

import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { freePort } from '../../bench/free-port.js';
import { childScript } from '../child-script.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'draw-ports.ts');
/** A range of 40 below the one freePort offers by default, so that no other file's draws meet these. */
const RANGE = { low: 14_000, high: 14_039 };

const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await new Promise((r) => c.on('exit', r));
    }
  }
});

/** Starts a child that draws `count` ports from `range`; resolves with them while it still holds them. */
async function draw(range: { low: number; high: number }, count: number): Promise<{ ports: Promise<number[]>; child: ChildProcess }> {
  const child = spawn(process.execPath, [await childScript(CHILD), String(range.low), String(range.high), String(count)], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  const ports = new Promise<number[]>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(JSON.parse(out) as number[]);
    });
    child.on('exit', (code) => reject(new Error(`draw-ports exited ${code} before printing its ports`)));
  });
  return { ports, child };
}

async function release(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.on('exit', r));
  child.stdin!.end();
  await exited;
}

it('two processes drawing from the same small range are never handed the same port', async () => {
  // 15 each of 40: drawing without regard for each other, they would share a port all but
  // surely (disjoint by chance once in ~12,000); the 10 left over allow for ports of the
  // range that something else on the machine listens on
  const a = await draw(RANGE, 15);
  const b = await draw(RANGE, 15);
  const [pa, pb] = await Promise.all([a.ports, b.ports]);
  expect(new Set(pa).size).toBe(15);
  expect(new Set(pb).size).toBe(15);
  expect(pa.filter((p) => pb.includes(p))).toEqual([]);
});

it('a process\'s ports are free for others once it exits', async () => {
  const range = { low: 14_040, high: 14_044 };
  const a = await draw(range, 5);
  const taken = await a.ports;
  expect(taken.sort()).toEqual([14_040, 14_041, 14_042, 14_043, 14_044]);
  await release(a.child);
  const again: number[] = [];
  for (let i = 0; i < 5; i++) again.push(await freePort(range));
  expect(again.sort()).toEqual(taken);
});
