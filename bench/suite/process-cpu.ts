// Where a whole `npm test` run's CPU goes, by kind of process: reads the text `dump-acct`
// prints from a BSD process-accounting file (one line per process that exited: its
// command name, user and system CPU, lifetime) and sums them per command name. Members
// are told apart from vitest's workers by the name process-cpu.sh gives the node binary
// that runs them. For the members it also fits CPU against lifetime (least squares): the
// constant is what a member costs whatever it does for how long (start, stop, the tests'
// work), the slope what each second alive costs (heartbeats, idle timers).
//
//   dump-acct FILE | npx tsx bench/suite/process-cpu.ts [MEMBER_COMMAND]

import { readFileSync } from 'node:fs';

/** dump-acct's times are in AHZ ticks (100 a second on Linux). */
const TICKS = 100;
const memberCommand = process.argv[2] ?? 'etcdtsnode';

interface Exit {
  command: string;
  cpuSeconds: number;
  aliveSeconds: number;
}

function parse(text: string): Exit[] {
  const exits: Exit[] = [];
  for (const line of text.split('\n')) {
    // command|version|user|system|elapsed|uid|gid|memory|io|pid|ppid|flags|exit|tty|begun
    const f = line.split('|').map((s) => s.trim());
    if (f.length < 12) continue;
    exits.push({ command: f[0]!, cpuSeconds: (Number(f[2]) + Number(f[3])) / TICKS, aliveSeconds: Number(f[4]) / TICKS });
  }
  return exits;
}

const exits = parse(readFileSync(0, 'utf8'));
const byCommand = new Map<string, { count: number; cpu: number; alive: number }>();
for (const e of exits) {
  const g = byCommand.get(e.command) ?? { count: 0, cpu: 0, alive: 0 };
  g.count++;
  g.cpu += e.cpuSeconds;
  g.alive += e.aliveSeconds;
  byCommand.set(e.command, g);
}
const total = exits.reduce((s, e) => s + e.cpuSeconds, 0);
console.log(`${exits.length} processes, ${total.toFixed(1)} CPU s`);
console.log('command            count     CPU s   alive s (sum)');
for (const [command, g] of [...byCommand].sort((a, b) => b[1].cpu - a[1].cpu).slice(0, 25)) {
  console.log(`${command.padEnd(16)} ${String(g.count).padStart(7)} ${g.cpu.toFixed(1).padStart(9)} ${g.alive.toFixed(0).padStart(11)}`);
}

const members = exits.filter((e) => e.command === memberCommand);
if (members.length > 1) {
  const n = members.length;
  const sx = members.reduce((s, e) => s + e.aliveSeconds, 0);
  const sy = members.reduce((s, e) => s + e.cpuSeconds, 0);
  const sxx = members.reduce((s, e) => s + e.aliveSeconds ** 2, 0);
  const sxy = members.reduce((s, e) => s + e.aliveSeconds * e.cpuSeconds, 0);
  const slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
  const constant = (sy - slope * sx) / n;
  console.log(`members (${memberCommand}): ${n}, ${sy.toFixed(1)} CPU s over ${sx.toFixed(0)} s alive; CPU ≈ ${constant.toFixed(2)} s + ${(slope * 1000).toFixed(1)} ms per second alive`);
}
