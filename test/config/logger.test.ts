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

describe('--log-package-levels', () => {
  function withLevels(logPackageLevels: string, logger: 'capnslog' | 'zap' = 'capnslog', logLevel: LogLevel = 'info') {
    const lines: string[] = [];
    const root = createLogger({ logLevel, logOutputs: ['default'], logger, logPackageLevels }, { destination: { write: (s: string) => void lines.push(s) } });
    // each logger writes every level once; what comes out is "caller:level"
    const write = (l: ReturnType<typeof createLogger>) => {
      for (const level of ['trace', 'debug', 'info', 'warn', 'error'] as const) l[level](level);
    };
    write(root);
    for (const caller of ['rafthttp', 'wal', 'etcdmain/main.ts', 'raft']) write(root.child({ caller }));
    // a child of a module logger keeps its module's level
    write(root.child({ caller: 'rafthttp' }).child({ peer: 'x' }));
    return lines.map((l) => JSON.parse(l) as Record<string, string>).map((r) => `${r['caller'] ?? 'etcdserver'}${r['peer'] ? '+' : ''}:${r['level']}`);
  }

  it("gives each of etcd's packages its level and the others --log-level, as etcd's capnslog logger does", () => {
    // raft is no package of etcd's capnslog: its lines keep --log-level
    expect(withLevels('etcdserver=WARNING,rafthttp=D,raft=ERROR')).toEqual([
      'etcdserver:warn', 'etcdserver:error',
      'rafthttp:debug', 'rafthttp:info', 'rafthttp:warn', 'rafthttp:error',
      'wal:info', 'wal:warn', 'wal:error',
      'etcdmain/main.ts:info', 'etcdmain/main.ts:warn', 'etcdmain/main.ts:error',
      'raft:info', 'raft:warn', 'raft:error',
      'rafthttp+:debug', 'rafthttp+:info', 'rafthttp+:warn', 'rafthttp+:error',
    ]);
    // "*" is every package not named; a file's directory is its package
    expect(withLevels('*=ERROR,wal=TRACE,etcdmain=1')).toEqual([
      'etcdserver:error',
      'rafthttp:error',
      'wal:trace', 'wal:debug', 'wal:info', 'wal:warn', 'wal:error',
      'etcdmain/main.ts:warn', 'etcdmain/main.ts:error',
      'raft:info', 'raft:warn', 'raft:error',
      'rafthttp+:error',
    ]);
  });

  it('CRITICAL keeps the panic and fatal lines, as capnslog keeps its Panic and Fatal', () => {
    const lines: string[] = [];
    const root = createLogger({ logLevel: 'info', logOutputs: ['default'], logger: 'capnslog', logPackageLevels: 'wal=CRITICAL' }, { destination: { write: (s: string) => void lines.push(s) } });
    const wal = root.child({ caller: 'wal' }) as unknown as Record<'error' | 'panic' | 'fatal', (m: string) => void>;
    wal.error('e');
    wal.panic('p');
    wal.fatal('f');
    expect(lines.map((l) => (JSON.parse(l) as { level: string }).level)).toEqual(['panic', 'fatal']);
  });

  it("says what it could not parse in etcd's words and keeps --log-level; --logger=zap does not read it", () => {
    const bad = withLevels('etcdserver:DEBUG');
    expect(bad[0]).toBe('etcdserver:warn');
    expect(bad.filter((l) => l.endsWith(':debug'))).toEqual([]);
    const lines: string[] = [];
    createLogger({ logLevel: 'info', logOutputs: ['default'], logger: 'capnslog', logPackageLevels: 'raft=LOUD' }, { destination: { write: (s: string) => void lines.push(s) } });
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'warn', msg: "couldn't parse log level string: couldn't parse log level LOUD, continuing with default levels" });
    expect(withLevels('etcdserver=ERROR,wal=DEBUG', 'zap')).toEqual(withLevels(''));
  });
});
