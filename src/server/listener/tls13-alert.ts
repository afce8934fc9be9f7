// A fatal TLS 1.3 alert the server writes itself, after Node's handshake has completed.
//
// etcd refuses a peer or client certificate (untrusted, or not the --peer-cert-allowed-cn /
// allowed hostname) inside Go's handshake, so the other side reads alert 42 and Go prints
// `remote error: tls: bad certificate`. Node's TLS server has no hook to fail its handshake on
// such a check: the certificate is judged once the handshake is over, when OpenSSL will no
// longer send an alert for us. Under TLS 1.3 the client has switched to the server's
// application traffic key by then, so the alert has to be sealed with that key (RFC 8446
// §7.1, §7.3) and with the next sequence number under it: the count of records the server
// already sent with it (OpenSSL's NewSessionTickets), found by opening them.

import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';

/** The TLS 1.3 suites OpenSSL enables (TLS_AES_128_CCM_* are off unless configured). */
const SUITES: Record<string, { aead: 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305'; hash: 'sha256' | 'sha384'; keyLength: number }> = {
  TLS_AES_128_GCM_SHA256: { aead: 'aes-128-gcm', hash: 'sha256', keyLength: 16 },
  TLS_AES_256_GCM_SHA384: { aead: 'aes-256-gcm', hash: 'sha384', keyLength: 32 },
  TLS_CHACHA20_POLY1305_SHA256: { aead: 'chacha20-poly1305', hash: 'sha256', keyLength: 32 },
};

const IV_LENGTH = 12;
const TAG_LENGTH = 16;
const RECORD_HEADER_LENGTH = 5;
/** TLSCiphertext.opaque_type of every protected record */
const APPLICATION_DATA = 23;
/** TLSInnerPlaintext.type of an alert */
const ALERT = 21;
const FATAL = 2;
export const BAD_CERTIFICATE = 42;

/** One direction's record protection: the AEAD key and the IV each record's nonce is made from. */
export interface TrafficKey {
  aead: 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305';
  key: Buffer;
  iv: Buffer;
}

/**
 * The record key and IV of a traffic secret (RFC 8446 §7.3) for the negotiated suite, named
 * as Node's getCipher().standardName names it; undefined for a suite not listed above.
 */
export function trafficKey(suite: string, secret: Buffer): TrafficKey | undefined {
  const s = SUITES[suite];
  if (s === undefined) return undefined;
  return { aead: s.aead, key: expandLabel(s.hash, secret, 'key', s.keyLength), iv: expandLabel(s.hash, secret, 'iv', IV_LENGTH) };
}

/**
 * How many of `records` (whole records, as the server wrote them, in order) were protected
 * with `key`: the sequence number of the next record under it. Records under the handshake
 * key do not open with it and are passed over.
 */
export function recordsSealedWith(key: TrafficKey, records: readonly Buffer[]): number {
  let seq = 0;
  for (const r of records) {
    if (r.length < RECORD_HEADER_LENGTH + TAG_LENGTH || r[0] !== APPLICATION_DATA) continue;
    if (opens(key, seq, r)) seq++;
  }
  return seq;
}

/** A whole fatal alert record with this description, sealed as record number `seq` under `key`. */
export function sealedAlert(key: TrafficKey, seq: number, description: number): Buffer {
  const inner = Buffer.from([FATAL, description, ALERT]);
  const header = recordHeader(inner.length + TAG_LENGTH);
  const iv = nonce(key, seq);
  // (one call per AEAD family: Node's typings take each as its own overload)
  const cipher =
    key.aead === 'chacha20-poly1305'
      ? createCipheriv(key.aead, key.key, iv, { authTagLength: TAG_LENGTH })
      : createCipheriv(key.aead, key.key, iv, { authTagLength: TAG_LENGTH });
  cipher.setAAD(header, { plaintextLength: inner.length });
  return Buffer.concat([header, cipher.update(inner), cipher.final(), cipher.getAuthTag()]);
}

function opens(key: TrafficKey, seq: number, record: Buffer): boolean {
  const body = record.subarray(RECORD_HEADER_LENGTH);
  const iv = nonce(key, seq);
  const decipher =
    key.aead === 'chacha20-poly1305'
      ? createDecipheriv(key.aead, key.key, iv, { authTagLength: TAG_LENGTH })
      : createDecipheriv(key.aead, key.key, iv, { authTagLength: TAG_LENGTH });
  decipher.setAAD(record.subarray(0, RECORD_HEADER_LENGTH), { plaintextLength: body.length - TAG_LENGTH });
  decipher.setAuthTag(body.subarray(body.length - TAG_LENGTH));
  decipher.update(body.subarray(0, body.length - TAG_LENGTH));
  try {
    decipher.final();
    return true;
  } catch {
    return false; // sealed with another key
  }
}

/** The per-record nonce: the IV XOR the 64-bit sequence number, left-padded (RFC 8446 §5.3). */
function nonce(key: TrafficKey, seq: number): Buffer {
  const n = Buffer.from(key.iv);
  const s = Buffer.alloc(IV_LENGTH);
  s.writeBigUInt64BE(BigInt(seq), IV_LENGTH - 8);
  for (let i = 0; i < IV_LENGTH; i++) n[i] = n[i]! ^ s[i]!;
  return n;
}

function recordHeader(length: number): Buffer {
  const h = Buffer.from([APPLICATION_DATA, 3, 3, 0, 0]);
  h.writeUInt16BE(length, 3);
  return h;
}

/** HKDF-Expand-Label(secret, label, "", length) (RFC 8446 §7.1). */
function expandLabel(hash: 'sha256' | 'sha384', secret: Buffer, label: string, length: number): Buffer {
  const full = Buffer.from(`tls13 ${label}`, 'latin1');
  const info = Buffer.concat([Buffer.from([length >> 8, length & 0xff, full.length]), full, Buffer.from([0])]);
  // HKDF-Expand (RFC 5869 §2.3): T(i) = HMAC(secret, T(i-1) | info | i)
  const out: Buffer[] = [];
  let t = Buffer.alloc(0);
  for (let i = 1, n = 0; n < length; i++, n += t.length) {
    t = createHmac(hash, secret).update(Buffer.concat([t, info, Buffer.from([i])])).digest();
    out.push(t);
  }
  return Buffer.concat(out).subarray(0, length);
}
