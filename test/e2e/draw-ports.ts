// Child process for free-port.test.ts: draws COUNT ports from LOW-HIGH with freePort, prints
// them as one JSON line, and holds them (stays alive) until its stdin closes.

import { freePort } from '../../bench/free-port.js';

const [low, high, count] = process.argv.slice(2).map(Number) as [number, number, number];
const ports: number[] = [];
for (let i = 0; i < count; i++) ports.push(await freePort({ low, high }));
process.stdout.write(`${JSON.stringify(ports)}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
