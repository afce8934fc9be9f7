// Shared pieces for the listener tests: a tiny KV.Range service, a logger whose lines the
// test can read, and a throwaway CA with certificates made by the openssl CLI.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import type { GrpcServer } from '../../src/server/grpc/server.js';
import * as protoLoader from '@grpc/proto-loader';
import pino, { type Logger } from 'pino';

const definition = protoLoader.loadSync('etcdserverpb/rpc.proto', {
  includeDirs: ['proto'],
  keepCase: true,
  longs: String,
  defaults: true,
});
const loaded = grpc.loadPackageDefinition(definition) as unknown as {
  etcdserverpb: { KV: grpc.ServiceClientConstructor };
};
export const KVClient = loaded.etcdserverpb.KV;

/** Registers a KV service whose Range answers every key with the value "bar", except "error". */
export function addRangeService(server: GrpcServer): void {
  server.addService(KVClient.service, {
    Range(call: grpc.ServerUnaryCall<{ key: Buffer }, unknown>, callback: grpc.sendUnaryData<unknown>) {
      if (call.request.key.toString() === 'error') {
        callback({ code: grpc.status.FAILED_PRECONDITION, details: 'test: refused' });
        return;
      }
      callback(null, {
        header: { cluster_id: '1', member_id: '2', revision: '5', raft_term: '1' },
        kvs: [{ key: call.request.key, value: Buffer.from('bar'), create_revision: '2', mod_revision: '2', version: '1' }],
        count: '1',
      });
    },
  });
}

export interface RangeResult {
  kvs: Array<{ key: Buffer; value: Buffer }>;
}

export function range(client: grpc.Client, key: string, metadata = new grpc.Metadata()): Promise<RangeResult> {
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, Function>).Range({ key: Buffer.from(key) }, metadata, (err: Error | null, res: RangeResult) =>
      err ? reject(err) : resolve(res),
    );
  });
}

/** A pino logger that keeps every line it writes, parsed. */
export function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

export interface TestPki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A second client certificate from the same CA (CN "other"). */
  otherClientCert: string;
  otherClientKey: string;
  /** A client certificate signed by a CA the server does not trust. */
  rogueCert: string;
  rogueKey: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

function makeCa(dir: string, name: string): void {
  openssl(['req', '-x509', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-keyout', `${name}-key.pem`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`], dir);
}

/** A certificate from `ca` for 127.0.0.1 (or `altNames`; '' for no subjectAltName) with this subject ("/CN=x", or "/O=x" for none). */
export function makeLeaf(dir: string, ca: string, name: string, subject: string, altNames = 'IP:127.0.0.1,DNS:localhost'): void {
  writeFileSync(path.join(dir, `${name}.ext`),
    `${altNames === '' ? '' : `subjectAltName=${altNames}\n`}extendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n`);
  openssl(['req', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', subject], dir);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}-key.pem`, '-CAcreateserial',
    '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`], dir);
}

/**
 * A CA, a server and a client certificate from it (IP SAN 127.0.0.1), and a rogue client, in
 * `dir`: by default a new temporary directory, which the caller removes (end-to-end tests pass
 * the harness's tempDir(), which their cleanup removes).
 */
export function makePki(dir = mkdtempSync(path.join(os.tmpdir(), 'listener-pki-'))): TestPki {
  makeCa(dir, 'ca');
  makeCa(dir, 'rogue-ca');
  makeLeaf(dir, 'ca', 'server', '/CN=etcd-server');
  makeLeaf(dir, 'ca', 'client', '/CN=root');
  makeLeaf(dir, 'ca', 'other', '/CN=other');
  makeLeaf(dir, 'rogue-ca', 'rogue', '/CN=intruder');
  const p = (f: string): string => path.join(dir, f);
  return {
    dir,
    ca: p('ca.pem'),
    serverCert: p('server.pem'),
    serverKey: p('server-key.pem'),
    clientCert: p('client.pem'),
    clientKey: p('client-key.pem'),
    otherClientCert: p('other.pem'),
    otherClientKey: p('other-key.pem'),
    rogueCert: p('rogue.pem'),
    rogueKey: p('rogue-key.pem'),
  };
}

/**
 * A DER CRL from the PKI's CA that revokes its client certificate (not the other one);
 * `validSeconds` sets how long until its next update (etcd's fixtures carry long-expired CRLs).
 */
export function revokeClientCert(pki: TestPki, validSeconds = 2 * 86400): string {
  const conf = path.join(pki.dir, 'ca.cnf');
  writeFileSync(path.join(pki.dir, 'index.txt'), '');
  writeFileSync(path.join(pki.dir, 'crlnumber'), '01\n');
  writeFileSync(conf, [
    '[ca]', 'default_ca = test_ca', '[test_ca]', `database = ${path.join(pki.dir, 'index.txt')}`,
    `crlnumber = ${path.join(pki.dir, 'crlnumber')}`, `certificate = ${pki.ca}`, `private_key = ${path.join(pki.dir, 'ca-key.pem')}`,
    'default_md = sha256', '',
  ].join('\n'));
  openssl(['ca', '-config', conf, '-revoke', pki.clientCert], pki.dir);
  openssl(['ca', '-config', conf, '-gencrl', '-crlsec', String(validSeconds), '-out', 'revoked.crl.pem'], pki.dir);
  openssl(['crl', '-in', 'revoked.crl.pem', '-outform', 'DER', '-out', 'revoked.crl'], pki.dir);
  return path.join(pki.dir, 'revoked.crl');
}

export function read(file: string): Buffer {
  return readFileSync(file);
}

/** One raw HTTP/2 frame: 9-byte header (length, type, flags, stream) and the payload. */
export function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return Buffer.concat([h, payload]);
}
