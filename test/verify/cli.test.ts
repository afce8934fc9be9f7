import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { historyToJsonLines } from '../../verify/history.js';
import { HistoryBuilder, get, gotKvs, kv, put, putOk } from './builders.js';

const cli = (args: string[]): { status: number | null; out: string } => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'verify/cli.ts', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: r.stdout + r.stderr };
};

describe('npm run jepsen (cli)', () => {
  it('re-checks a recorded history and writes a timeline for an invalid one', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'verify-cli-'));
    try {
      const b = new HistoryBuilder();
      b.op(0, 0, 1, put('g/a', '1'), putOk(2));
      b.op(0, 2, 3, put('g/a', '2'), putOk(3));
      b.op(1, 4, 5, get('g/a'), gotKvs(3, kv('g/a', '1', 2, 2, 1)));
      const file = path.join(dir, 'history.jsonl');
      fs.writeFileSync(file, historyToJsonLines(b.history));
      const r = cli(['--check', file]);
      expect(r.status, r.out).toBe(1);
      expect(r.out).toContain('verdict: INVALID');
      expect(fs.existsSync(path.join(dir, 'timeline.html'))).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects bad arguments with a usage message', () => {
    const r = cli(['--nemesis', 'earthquake']);
    expect(r.status).toBe(64);
    expect(r.out).toContain('unknown nemesis "earthquake"');
    expect(r.out).toContain('usage: npm run jepsen');
  });
});
