import { describe, expect, it } from 'vitest';
import { parseAutoCompaction } from '../../src/server/config/build.js';
import {
  INT64_MAX,
  INT64_MIN,
  UINT32_MAX,
  UINT64_MAX,
  parseEtcdUrl,
  parseGoBool,
  parseGoDuration,
  parseGoInt,
  parseInitialCluster,
  parseStringList,
  parseUrlList,
  urlPort,
  urlString,
} from '../../src/server/config/values.js';

const value = <T>(r: { ok: true; value: T } | { ok: false; reason: string }): T => {
  if (!r.ok) throw new Error(`expected ok, got ${r.reason}`);
  return r.value;
};
const reason = (r: { ok: boolean; reason?: string }): string | undefined => (r.ok ? undefined : r.reason);

describe('Go integer syntax (strconv base 0)', () => {
  it('takes decimal, hex, octal, binary and underscores', () => {
    expect(value(parseGoInt('100000', 0n, UINT64_MAX))).toBe(100000);
    expect(value(parseGoInt('0x10', 0n, UINT64_MAX))).toBe(16);
    expect(value(parseGoInt('010', 0n, UINT64_MAX))).toBe(8);
    expect(value(parseGoInt('0o17', 0n, UINT64_MAX))).toBe(15);
    expect(value(parseGoInt('0b101', 0n, UINT64_MAX))).toBe(5);
    expect(value(parseGoInt('1_000', 0n, UINT64_MAX))).toBe(1000);
    expect(value(parseGoInt('0', 0n, UINT64_MAX))).toBe(0);
    expect(value(parseGoInt('-1', INT64_MIN, INT64_MAX))).toBe(-1);
    expect(value(parseGoInt('+7', INT64_MIN, INT64_MAX))).toBe(7);
  });
  it('refuses what etcd refuses with "parse error"', () => {
    for (const bad of ['abc', '1.5', '1e3', '', ' 1', '1_', '_1', '1__0', '08', '-5', '+5', '0x']) {
      expect(reason(parseGoInt(bad, 0n, UINT64_MAX)), bad).toBe('parse error');
    }
  });
  it('reports out-of-range values', () => {
    expect(reason(parseGoInt('4294967296', 0n, UINT32_MAX))).toBe('value out of range');
    expect(value(parseGoInt('4294967295', 0n, UINT32_MAX))).toBe(4294967295);
    expect(reason(parseGoInt('18446744073709551615', 0n, UINT64_MAX))).toBe('value out of range');
  });
});

describe('Go bool syntax (strconv.ParseBool)', () => {
  it('takes exactly Go spellings', () => {
    for (const t of ['1', 't', 'T', 'true', 'TRUE', 'True']) expect(value(parseGoBool(t))).toBe(true);
    for (const f of ['0', 'f', 'F', 'false', 'FALSE', 'False']) expect(value(parseGoBool(f))).toBe(false);
    for (const bad of ['yes', 'on', 'tRUE', '', 'maybe']) expect(reason(parseGoBool(bad))).toBe('parse error');
  });
});

describe('Go durations (time.ParseDuration), in ms', () => {
  it('parses units and compounds', () => {
    expect(value(parseGoDuration('5s'))).toBe(5000);
    expect(value(parseGoDuration('2h'))).toBe(7_200_000);
    expect(value(parseGoDuration('100ms'))).toBe(100);
    expect(value(parseGoDuration('1h30m'))).toBe(5_400_000);
    expect(value(parseGoDuration('1.5s'))).toBe(1500);
    expect(value(parseGoDuration('0'))).toBe(0);
    expect(value(parseGoDuration('-1s'))).toBe(-1000);
    expect(value(parseGoDuration('1500us'))).toBe(1.5);
    expect(value(parseGoDuration('2µs'))).toBe(0.002);
  });
  it("uses Go's messages", () => {
    expect(reason(parseGoDuration('abc'))).toBe('time: invalid duration "abc"');
    expect(reason(parseGoDuration('5'))).toBe('time: missing unit in duration "5"');
    expect(reason(parseGoDuration('5x'))).toBe('time: unknown unit "x" in duration "5x"');
    expect(reason(parseGoDuration(''))).toBe('time: invalid duration ""');
  });
});

describe('etcd URLs', () => {
  it('accepts http, https, unix and unixs with host:port', () => {
    expect(value(parseEtcdUrl('http://127.0.0.1:2379')).port).toBe('2379');
    expect(value(parseEtcdUrl(' https://[::1]:2379 ')).hostname).toBe('[::1]');
    expect(value(parseEtcdUrl('unix://localhost:12345')).protocol).toBe('unix:');
  });
  it("refuses the rest with etcd's messages", () => {
    expect(reason(parseEtcdUrl('foo'))).toBe('URL scheme must be http, https, unix, or unixs: foo');
    expect(reason(parseEtcdUrl(''))).toBe('URL scheme must be http, https, unix, or unixs: ');
    expect(reason(parseEtcdUrl('ftp://a:1'))).toBe('URL scheme must be http, https, unix, or unixs: ftp://a:1');
    expect(reason(parseEtcdUrl('http://127.0.0.1'))).toBe('URL address does not have the form "host:port": http://127.0.0.1');
    expect(reason(parseEtcdUrl('http://127.0.0.1:1/x'))).toBe('URL must not contain a path: http://127.0.0.1:1/x');
    expect(reason(parseEtcdUrl('http://127.0.0.1:1/'))).toBe('URL must not contain a path: http://127.0.0.1:1/');
    expect(reason(parseEtcdUrl('http://a:b:1'))).toBe('URL address does not have the form "host:port": http://a:b:1');
  });
  it('prints URLs as etcd does, keeping default ports', () => {
    expect(urlString(value(parseEtcdUrl('http://127.0.0.1:2379')))).toBe('http://127.0.0.1:2379');
    expect(urlString(value(parseEtcdUrl('http://example.com:80')))).toBe('http://example.com:80');
    expect(urlString(value(parseEtcdUrl('https://[::1]:443')))).toBe('https://[::1]:443');
    expect(urlPort(value(parseEtcdUrl('https://a:443')))).toBe(443);
  });
  it('sorts and deduplicates lists as etcd UniqueURLs', () => {
    const urls = value(parseUrlList('http://b:2,http://a:1,http://b:2'));
    expect(urls.map(urlString)).toEqual(['http://a:1', 'http://b:2']);
    expect(reason(parseUrlList('http://a:1,bad'))).toBe('URL scheme must be http, https, unix, or unixs: bad');
  });
  it('string lists are trimmed, unique and sorted', () => {
    expect(parseStringList('b, a,b,,')).toEqual(['a', 'b']);
    expect(parseStringList('')).toEqual([]);
  });
});

describe('--initial-cluster', () => {
  it('maps names to peer URLs, several per member', () => {
    const m = value(parseInitialCluster('infra0=http://10.0.1.10:2380,infra1=http://10.0.1.11:2380,infra0=http://10.0.2.10:2380'));
    expect([...m.keys()]).toEqual(['infra0', 'infra1']);
    expect(m.get('infra0')!.map(urlString)).toEqual(['http://10.0.1.10:2380', 'http://10.0.2.10:2380']);
  });
  it("refuses malformed entries with etcd's URL messages", () => {
    expect(reason(parseInitialCluster('foo'))).toBe('URL scheme must be http, https, unix, or unixs: ');
    expect(reason(parseInitialCluster('default=foo'))).toBe('URL scheme must be http, https, unix, or unixs: foo');
    expect(reason(parseInitialCluster('=http://a:1'))).toMatch(/has no name/);
  });
});

describe('--auto-compaction-retention', () => {
  it('reads integers as hours (periodic) or revisions, anything else as a Go duration', () => {
    const HOUR = 3_600_000;
    expect(parseAutoCompaction('periodic', '1')).toEqual({ ok: true, value: { mode: 'periodic', retentionMs: HOUR } });
    expect(parseAutoCompaction('periodic', '30m')).toEqual({ ok: true, value: { mode: 'periodic', retentionMs: HOUR / 2 } });
    expect(parseAutoCompaction('periodic', '1h30m')).toEqual({ ok: true, value: { mode: 'periodic', retentionMs: 1.5 * HOUR } });
    expect(parseAutoCompaction('revision', '1000')).toEqual({ ok: true, value: { mode: 'revision', retentionRevisions: 1000 } });
    expect(parseAutoCompaction('periodic', '0')).toEqual({ ok: true, value: null });
    expect(parseAutoCompaction('periodic', 'soon').ok).toBe(false);
    expect(parseAutoCompaction('revision', '10m').ok).toBe(false);
  });
});
