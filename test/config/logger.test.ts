import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger, moduleLogger } from '../../src/server/logger.js';
import type { LogLevel } from '../../src/server/config/index.js';

function capture(logLevel: LogLevel) {
  const lines: string[] = [];
  const logger = createLogger({ logLevel, logOutputs: ['default'] }, { destination: { write: (s: string) => void lines.push(s) } });
  return { logger, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>), raw: lines };
}

const dir = mkdtempSync(join(tmpdir(), 'config-eng-log-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('createLogger', () => {
  it("prints zap's JSON shape: level word, ISO ts, caller, msg, kebab-case fields", () => {
    const { logger, records, raw } = capture('info');
    moduleLogger(logger, 'etcdserver/server.ts').info({ 'local-member-id': '8e9e05c52164694d' }, 'ready to serve client requests');
    const [r] = records();
    expect(Object.keys(r!)).toEqual(['level', 'ts', 'caller', 'local-member-id', 'msg']);
    expect(r).toMatchObject({ level: 'info', caller: 'etcdserver/server.ts', msg: 'ready to serve client requests' });
    expect(new Date(r!['ts'] as string).toISOString()).toBe(r!['ts']);
    expect(raw[0]!.endsWith('\n')).toBe(true);
    expect(raw[0]!.split('\n')).toHaveLength(2);
  });
  it('filters by --log-level, with panic between error and fatal', () => {
    const { logger, records } = capture('error');
    logger.debug('d');
    logger.info('i');
    logger.warn('w');
    logger.error('e');
    (logger as unknown as { panic: (m: string) => void }).panic('p');
    logger.fatal('f');
    expect(records().map((r) => r['level'])).toEqual(['error', 'panic', 'fatal']);
    const p = capture('panic');
    p.logger.error('e');
    p.logger.fatal('f');
    expect(p.records().map((r) => r['level'])).toEqual(['fatal']);
    const d = capture('debug');
    d.logger.debug('d');
    expect(d.records().map((r) => r['level'])).toEqual(['debug']);
  });
  it('writes errors as their message, as zap does', () => {
    const { logger, records } = capture('info');
    logger.warn({ error: new Error('disk full') }, 'slow fdatasync');
    expect(records()[0]!['error']).toBe('disk full');
  });
  it('appends to every file in --log-outputs, synchronously', () => {
    const a = join(dir, 'a.log');
    const b = join(dir, 'b.log');
    const logger = createLogger({ logLevel: 'info', logOutputs: [a, b] });
    logger.info('one');
    logger.fatal('two');
    // no flush, no wait: the lines are on disk when the call returns
    for (const f of [a, b]) {
      expect(readFileSync(f, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['one', 'two']);
    }
  });
  it('refuses an output it cannot open, naming it', () => {
    const missing = join(dir, 'no-such-dir', 'x.log');
    expect(() => createLogger({ logLevel: 'info', logOutputs: [missing] })).toThrow(`cannot open log output ${JSON.stringify(missing)} (--log-outputs)`);
    expect(() => createLogger({ logLevel: 'info', logOutputs: ['stderr', '/dev/null/x.log'] })).toThrow(/ENOTDIR/);
  });
});
