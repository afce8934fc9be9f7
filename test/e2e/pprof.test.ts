// --enable-pprof, as an operator uses it: `go tool pprof` (Go's own reader, from golang-go)
// reads the CPU and heap profiles a member and a gRPC proxy serve under /debug/pprof/,
// and the rest of the subtree answers as etcd's net/http/pprof does.

import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { EtcdClient } from './client.js';
import { cleanup, command, freePort, httpRequest, killProcesses, spawnTracked, startMember, stopMember, tempDir } from './harness.js';

afterAll(cleanup);
afterEach(killProcesses);

/** The body of a GET, as bytes. */
async function download(url: string): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const res = await fetch(url);
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

/** `go tool pprof -raw` of a profile file: its sample types, and every frame's function and file. */
function pprofRaw(body: Buffer): string {
  const file = path.join(tempDir(), 'profile.pb.gz');
  writeFileSync(file, body);
  const r = spawnSync('go', ['tool', 'pprof', '-raw', file], { encoding: 'utf8', env: { ...process.env, HOME: tempDir() } });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

/** The sample values of a `-raw` listing ("     12   12000000: 1 2 3" lines), summed by column. */
function totals(raw: string): number[] {
  const sums: number[] = [];
  for (const m of raw.matchAll(/^\s+(\d+(?:\s+\d+)*): [\d ]+$/gm)) {
    m[1]!.trim().split(/\s+/).forEach((v, i) => (sums[i] = (sums[i] ?? 0) + Number(v)));
  }
  return sums;
}

describe('a member with --enable-pprof', () => {
  it('serves a CPU profile of its work and a heap profile that go tool pprof reads, says so at start, and answers the rest as Go does', async () => {
    const m = await startMember({ args: ['--enable-pprof'] });
    // etcd's line, with its path
    expect(m.output()).toMatch(/"path":"\/debug\/pprof","msg":"pprof is enabled"/);
    const base = `${m.clientUrl}/debug/pprof`;

    const client = new EtcdClient(m.clientUrl);
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) await client.put(`pprof/${i % 100}`, 'x'.repeat(100));
    })();
    // one CPU profile at a time, as Go's: of two asked for together, one is refused
    const profiles = [download(`${base}/profile?seconds=3`)];
    await new Promise((r) => setTimeout(r, 300));
    profiles.push(download(`${base}/profile?seconds=3`));
    const both = await Promise.all(profiles);
    writing = false;
    await writer;
    client.close();
    const refused = both.filter((p) => p.status === 500);
    expect(refused.map((p) => p.body.toString())).toEqual(['Could not enable CPU profiling: cpu profiling already in use\n']);
    const first = both.find((p) => p.status !== 500)!;
    expect(first.status).toBe(200);
    expect(first.headers.get('content-disposition')).toBe('attachment; filename="profile"');
    const cpuRaw = pprofRaw(first.body);
    expect(cpuRaw).toMatch(/^PeriodType: cpu nanoseconds$/m);
    expect(cpuRaw).toMatch(/^samples\/count cpu\/nanoseconds$/m);
    const [ticks, nanos] = totals(cpuRaw);
    expect(ticks).toBeGreaterThan(0);
    expect(nanos).toBe(ticks! * 1_000_000);
    // the stacks are the member's own code: the bundle's functions by name and file
    expect(cpuRaw).toMatch(/^\s+\d+: \S+ .*dist\/(bundle|src)\/\S+\.js/m);

    // a client that gives up ends its profile: the next one may start
    const aborted = new AbortController();
    const long = fetch(`${base}/profile?seconds=600`, { signal: aborted.signal }).catch((e: Error) => e.name);
    await new Promise((r) => setTimeout(r, 500));
    aborted.abort();
    expect(await long).toBe('AbortError');
    await new Promise((r) => setTimeout(r, 200));
    expect((await download(`${base}/profile?seconds=1`)).status).toBe(200);

    const heap = await download(`${base}/heap?gc=1`);
    expect(heap.status).toBe(200);
    expect(heap.headers.get('content-disposition')).toBe('attachment; filename="heap"');
    const heapRaw = pprofRaw(heap.body);
    expect(heapRaw).toMatch(/^PeriodType: space bytes$/m);
    expect(heapRaw).toMatch(/^Period: 524288$/m);
    expect(heapRaw).toMatch(/^inuse_space\/bytes$/m);
    expect(totals(heapRaw)[0]).toBeGreaterThan(0);

    const cmdline = await httpRequest(`${base}/cmdline`);
    expect(cmdline.text.split('\0')).toContain('--enable-pprof');
    // Go's words and header for what a Node process has no profile of
    for (const name of ['goroutine', 'threadcreate', 'block', 'mutex', 'no-such-profile']) {
      const r = await httpRequest(`${base}/${name}`);
      expect([r.status, r.text, r.headers.get('x-go-pprof')]).toEqual([404, 'Unknown profile\n', '1']);
    }
    expect((await httpRequest(`${base}/heap?seconds=x`)).text).toBe('invalid value for "seconds" - must be a positive integer\n');
    const index = await httpRequest(`${base}/`);
    expect(index.status).toBe(200);
    expect(index.text).toContain('<a href="heap">heap</a>');
    await stopMember(m);
  });

  it('is not there without the flag; --debug serves it too, unannounced, as etcd 3.4', async () => {
    const plain = await startMember();
    expect(plain.output()).not.toContain('pprof is enabled');
    expect((await httpRequest(`${plain.clientUrl}/debug/pprof/heap`)).status).toBe(404);
    await stopMember(plain);
    const debug = await startMember({ args: ['--debug'] });
    expect(debug.output()).not.toContain('pprof is enabled');
    expect((await httpRequest(`${debug.clientUrl}/debug/pprof/cmdline`)).text.split('\0')).toContain('--debug');
    await stopMember(debug);
  });
});

describe('a gRPC proxy with --enable-pprof', () => {
  it('serves the profiles beside its gRPC, not on --metrics-addr, as etcd\'s proxy', async () => {
    const port = await freePort();
    const metricsPort = await freePort();
    // the profiles need no cluster: the proxy starts towards an endpoint nobody answers
    const run = command(['grpc-proxy', 'start', '--listen-addr', `127.0.0.1:${port}`, '--metrics-addr', `http://127.0.0.1:${metricsPort}`, '--endpoints', '127.0.0.1:1', '--enable-pprof']);
    const proxy = spawnTracked(run.cmd, run.argv, { env: { ...process.env, ...run.env } });
    const deadline = Date.now() + 20_000;
    while (!proxy.output().includes('started gRPC proxy')) {
      if (Date.now() > deadline) throw new Error(`grpc-proxy did not start:\n${proxy.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(proxy.output()).toMatch(/"path":"\/debug\/pprof","msg":"gRPC proxy enabled pprof"/);
    expect(proxy.output()).not.toContain('not implemented');
    const heap = await download(`http://127.0.0.1:${port}/debug/pprof/heap`);
    expect(heap.status).toBe(200);
    expect(pprofRaw(heap.body)).toMatch(/^inuse_space\/bytes$/m);
    expect((await httpRequest(`http://127.0.0.1:${metricsPort}/debug/pprof/heap`)).status).toBe(404);
    proxy.proc.kill('SIGTERM');
    await proxy.exited;
  });
});
