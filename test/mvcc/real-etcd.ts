// A throwaway real etcd 3.4 (the installed /usr/bin/etcd) on loopback, with a small
// gRPC client for the KV and Maintenance calls the comparison tests need.

import { spawn, type ChildProcess } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { removeDir, scratchDir } from './helpers.js';
import { freePort } from '../../bench/free-port.js';

type Unary = (req: object, cb: (err: grpc.ServiceError | null, res: any) => void) => void;

export class RealEtcd {
  private constructor(
    private readonly proc: ChildProcess,
    private readonly dir: string,
    private readonly kv: Record<string, Unary>,
    private readonly maint: Record<string, Unary>,
    private readonly lease: Record<string, Unary>,
    private readonly watchSvc: any,
  ) {}

  static async start(): Promise<RealEtcd> {
    const dir = scratchDir();
    const [client, peer] = [await freePort(), await freePort()];
    const proc = spawn(
      '/usr/bin/etcd',
      [
        '--name', 'm', '--data-dir', `${dir}/data`,
        '--listen-client-urls', `http://127.0.0.1:${client}`, '--advertise-client-urls', `http://127.0.0.1:${client}`,
        '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
        '--initial-cluster', `m=http://127.0.0.1:${peer}`,
      ],
      { stdio: 'ignore' },
    );
    const def = protoLoader.loadSync('etcdserverpb/rpc.proto', {
      includeDirs: ['proto'],
      keepCase: true,
      longs: String,
      enums: Number,
      bytes: Buffer,
      defaults: true,
      oneofs: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as any;
    const addr = `127.0.0.1:${client}`;
    const creds = grpc.credentials.createInsecure();
    const e = new RealEtcd(
      proc,
      dir,
      new pkg.etcdserverpb.KV(addr, creds),
      new pkg.etcdserverpb.Maintenance(addr, creds),
      new pkg.etcdserverpb.Lease(addr, creds),
      new pkg.etcdserverpb.Watch(addr, creds),
    );
    for (let i = 0; ; i++) {
      try {
        await e.call('kv', 'Range', { key: Buffer.from('x') });
        return e;
      } catch (err) {
        if (i > 100) {
          await e.stop();
          throw err;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  call(svc: 'kv' | 'maint' | 'lease', method: string, req: object): Promise<any> {
    const client = this[svc] as any;
    return new Promise((resolve, reject) =>
      client[method](req, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, res: any) =>
        err ? reject(err) : resolve(res),
      ),
    );
  }

  /** Every event with revision in [from, upTo] over all keys, with prev_kv. */
  watchAll(from: number, upTo: number): Promise<any[]> {
    return new Promise((resolve, reject) => {
      const call = this.watchSvc.Watch();
      const events: any[] = [];
      call.on('data', (r: any) => {
        if (r.canceled) reject(new Error(`watch canceled: ${r.cancel_reason} (compact ${r.compact_revision})`));
        events.push(...r.events);
        const last = events.length > 0 ? Number(events[events.length - 1].kv.mod_revision) : 0;
        if (last >= upTo || (r.created && Number(r.header.revision) < from)) {
          call.cancel();
          resolve(events);
        }
      });
      call.on('error', (e: grpc.ServiceError) => {
        if (e.code !== grpc.status.CANCELLED) reject(e);
      });
      call.write({
        create_request: { key: Buffer.of(0), range_end: Buffer.of(0), start_revision: from, prev_kv: true },
      });
    });
  }

  async stop(): Promise<void> {
    for (const c of [this.kv, this.maint, this.lease, this.watchSvc]) (c as grpc.Client).close();
    if (this.proc.exitCode === null) {
      const exited = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill('SIGTERM');
      await exited;
    }
    removeDir(this.dir);
  }
}
