// Standard base64 (with padding) decoded the way Go's encoding/base64 StdEncoding does,
// which is how etcd's gateway reads `bytes` fields: CR and LF are skipped anywhere, and
// bad input is refused with the offset Go reports ("illegal base64 data at input byte N").
// Node's own decoder silently skips what it does not understand.

export class Base64Error extends Error {
  constructor(readonly offset: number) {
    super(`illegal base64 data at input byte ${offset}`);
    this.name = 'Base64Error';
  }
}

const PAD = 0x3d; // '='
const decodeMap = new Int16Array(256).fill(-1);
for (const [i, ch] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].entries()) {
  decodeMap[ch.charCodeAt(0)] = i;
}

function isNewline(c: number | undefined): boolean {
  return c === 0x0a || c === 0x0d;
}

/** Well-formed padded base64 without line breaks, which Node's decoder reads exactly as Go's. */
const CANONICAL = /^[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes `text` (a JSON string's value) to bytes, or throws Base64Error. */
export function decodeBase64Std(text: string): Buffer {
  if (text.length % 4 === 0 && CANONICAL.test(text)) return Buffer.from(text, 'base64');
  const src = Buffer.from(text, 'utf8');
  const out = Buffer.allocUnsafe(Math.floor(src.length / 4) * 3 + 3);
  let n = 0;
  let si = 0;
  // One quantum (4 symbols, newlines skipped) per turn, as Go's decodeQuantum.
  while (si < src.length) {
    const q = [0, 0, 0, 0];
    let len = 4;
    for (let j = 0; j < 4; j++) {
      if (si === src.length) {
        if (j === 0) return out.subarray(0, n);
        // Padding is required: a short last quantum is refused at its start.
        throw new Base64Error(si - j);
      }
      const c = src[si]!;
      si++;
      const v = decodeMap[c]!;
      if (v >= 0) {
        q[j] = v;
        continue;
      }
      if (isNewline(c)) {
        j--;
        continue;
      }
      if (c !== PAD) throw new Base64Error(si - 1);
      // Padding: only after two or three symbols, "==" after two.
      if (j < 2) throw new Base64Error(si - 1);
      if (j === 2) {
        while (si < src.length && isNewline(src[si])) si++;
        if (si === src.length) throw new Base64Error(src.length);
        if (src[si] !== PAD) throw new Base64Error(si - 1);
        si++;
      }
      while (si < src.length && isNewline(src[si])) si++;
      if (si < src.length) throw new Base64Error(si);
      len = j;
      break;
    }
    const val = (q[0]! << 18) | (q[1]! << 12) | (q[2]! << 6) | q[3]!;
    out[n++] = (val >> 16) & 0xff;
    if (len > 2) out[n++] = (val >> 8) & 0xff;
    if (len > 3) out[n++] = val & 0xff;
    if (len < 4) break;
  }
  return out.subarray(0, n);
}
