// Go's crypto/tls wording for the TLS errors Node reports, as etcd prints them (and as
// etcd's own tests and operators' scripts match them): an alert from the other side reads
// `remote error: tls: bad certificate` where OpenSSL says `sslv3 alert bad certificate`.

/** Go's description of each alert (crypto/tls alert.go). */
const ALERT_TEXT: Readonly<Record<number, string>> = {
  0: 'close notify',
  10: 'unexpected message',
  20: 'bad record MAC',
  21: 'decryption failed',
  22: 'record overflow',
  30: 'decompression failure',
  40: 'handshake failure',
  42: 'bad certificate',
  43: 'unsupported certificate',
  44: 'revoked certificate',
  45: 'expired certificate',
  46: 'unknown certificate',
  47: 'illegal parameter',
  48: 'unknown certificate authority',
  49: 'access denied',
  50: 'error decoding message',
  51: 'error decrypting message',
  60: 'export restriction',
  70: 'protocol version not supported',
  71: 'insufficient security level',
  80: 'internal error',
  86: 'inappropriate fallback',
  90: 'user canceled',
  100: 'no renegotiation',
  109: 'missing extension',
  110: 'unsupported extension',
  111: 'certificate unobtainable',
  112: 'unrecognized name',
  113: 'bad certificate status response',
  114: 'bad certificate hash value',
  115: 'unknown PSK identity',
  116: 'certificate required',
  120: 'no application protocol',
};

/** Go's message for an alert received from the other side; any other error keeps Node's. */
export function goTlsErrorMessage(err: Error): string {
  const alert = receivedAlert(err);
  if (alert === undefined) return err.message;
  return `remote error: tls: ${ALERT_TEXT[alert] ?? `alert(${alert})`}`;
}

/**
 * The alert an error reports receiving: OpenSSL adds "SSL alert number N" to the error it
 * raises for a fatal alert it read (and only then); Node gives it an ERR_SSL_* code.
 */
function receivedAlert(err: Error): number | undefined {
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code !== 'string' || !code.startsWith('ERR_SSL_')) return undefined;
  const m = /SSL alert number (\d+)/.exec(err.message);
  return m === null ? undefined : Number(m[1]);
}
