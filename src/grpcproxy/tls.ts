// TLS toward the cluster (--cert, --key, --cacert, --insecure-skip-tls-verify), checked
// as etcd checks it before dialling: the certificate and key come together, and the
// certificate must have an empty Common Name. Etcd refuses a named one because a member
// with auth on would take the CN as the user for every request the proxy forwards, its
// clients' own tokens notwithstanding.

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';

export interface UpstreamTlsFlags {
  cert: string;
  key: string;
  cacert: string;
  insecureSkipTlsVerify: boolean;
}

export interface UpstreamTls {
  credentials: grpc.ChannelCredentials;
  /** the same identity for HTTPS requests to the members (/metrics) */
  https: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean };
  /** how etcd logs it: "cert = ..., key = ..., trusted-ca = ..., client-cert-auth = false, crl-file = " */
  info: string;
}

/** A refusal to start, with the words etcd prints (exit code 1). */
export class ProxyStartError extends Error {
  override name = 'ProxyStartError';
}

/** Go's error for a file it cannot open. */
function read(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message;
    throw new ProxyStartError(`open ${file}: ${reason}`);
  }
}

/** undefined when no upstream TLS flag is set (plain connections, unless an endpoint is https://). */
export function upstreamTls(f: UpstreamTlsFlags): UpstreamTls | undefined {
  if (f.cert === '' && f.key === '' && f.cacert === '' && !f.insecureSkipTlsVerify) return undefined;
  let cert: Buffer | undefined;
  let key: Buffer | undefined;
  if (f.cert !== '' || f.key !== '') {
    if (f.cert === '' || f.key === '') throw new ProxyStartError(`KeyFile and CertFile must both be present[key: ${f.key}, cert: ${f.cert}]`);
    cert = read(f.cert);
    key = read(f.key);
  }
  const ca = f.cacert !== '' ? read(f.cacert) : undefined;
  if (cert !== undefined) {
    let cn: string | undefined;
    try {
      cn = /^CN=(.*)$/m.exec(new X509Certificate(cert).subject)?.[1];
    } catch (err) {
      throw new ProxyStartError(`tls: failed to parse certificate ${f.cert}: ${(err as Error).message}`);
    }
    if (cn !== undefined && cn !== '') throw new ProxyStartError(`cert has non empty Common Name (${cn})`);
  }
  const verify: grpc.VerifyOptions = f.insecureSkipTlsVerify ? { rejectUnauthorized: false, checkServerIdentity: () => undefined } : {};
  return {
    credentials: grpc.credentials.createSsl(ca ?? null, key ?? null, cert ?? null, verify),
    https: { ca, cert, key, rejectUnauthorized: !f.insecureSkipTlsVerify },
    info: `cert = ${f.cert}, key = ${f.key}, trusted-ca = ${f.cacert}, client-cert-auth = false, crl-file = `,
  };
}
