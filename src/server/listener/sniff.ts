// Telling gRPC from HTTP/1.1 on a shared port by the first bytes a client sends, as etcd's
// cmux does: every HTTP/2 connection opens with the fixed client preface (RFC 9113 §3.4),
// and no HTTP/1.x request line can start with it.

export const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export type SniffResult = 'h2' | 'http1' | 'undecided';

/** Classifies the bytes received so far; 'undecided' while they are a strict prefix of the preface. */
export function sniffProtocol(head: Buffer): SniffResult {
  const n = Math.min(head.length, HTTP2_PREFACE.length);
  if (head.subarray(0, n).equals(HTTP2_PREFACE.subarray(0, n))) {
    return n === HTTP2_PREFACE.length ? 'h2' : 'undecided';
  }
  return 'http1';
}
