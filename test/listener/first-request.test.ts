// The checks on what a client sends before its first request, frame by frame.

import { describe, expect, it } from 'vitest';
import { FirstRequestGuard, MAX_BYTES_BEFORE_FIRST_REQUEST } from '../../src/server/listener/first-request.js';
import { ConnectionError, ErrorCode } from '../../src/server/listener/h2.js';

type Step = [length: number, type: number, flags: number, streamId: number, payload?: string];

/** Feeds frame headers and payloads (hex) to a fresh guard; returns the error code it refused with, if any. */
function refusal(steps: Step[]): number | undefined {
  const g = new FirstRequestGuard();
  try {
    for (const [length, type, flags, streamId, payload] of steps) {
      g.frameHeader(length, type, flags, streamId);
      if (payload !== undefined) for (const b of Buffer.from(payload, 'hex')) g.payload(Buffer.from([b]));
    }
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectionError);
    return (err as ConnectionError).code;
  }
  return undefined;
}

const SETTINGS: Step = [0, 0x4, 0, 0];

describe('FirstRequestGuard', () => {
  it('lets a real client through: SETTINGS, WINDOW_UPDATE, ACK, PING, PRIORITY, an unknown frame, then HEADERS', () => {
    const g = new FirstRequestGuard();
    expect(g.handshakeDone).toBe(false);
    g.frameHeader(12, 0x4, 0, 0);
    g.payload(Buffer.from('000400400000', 'hex'));
    expect(g.handshakeDone).toBe(false);
    g.payload(Buffer.from('000500004000', 'hex'));
    expect(g.handshakeDone).toBe(true);
    g.frameHeader(4, 0x8, 0, 0);
    g.payload(Buffer.from('00ff0000', 'hex'));
    g.frameHeader(0, 0x4, 0x1, 0);
    g.frameHeader(8, 0x6, 0, 0);
    g.frameHeader(5, 0x2, 0, 3);
    g.frameHeader(100, 0xfa, 0, 0);
    expect(g.done).toBe(false);
    g.frameHeader(30, 0x1, 0x4, 1);
    expect(g.done).toBe(true);
  });

  it('refuses each broken frame with the code RFC 9113 gives it', () => {
    const cases: Array<[string, Step[], number]> = [
      ['a first frame other than SETTINGS', [[8, 0x6, 0, 0]], ErrorCode.PROTOCOL_ERROR],
      ['a SETTINGS ACK first', [[0, 0x4, 0x1, 0]], ErrorCode.PROTOCOL_ERROR],
      ['DATA on stream 0', [SETTINGS, [3, 0x0, 0, 0]], ErrorCode.PROTOCOL_ERROR],
      ['DATA on an idle stream', [SETTINGS, [3, 0x0, 0, 1]], ErrorCode.PROTOCOL_ERROR],
      ['RST_STREAM on an idle stream', [SETTINGS, [4, 0x3, 0, 1]], ErrorCode.PROTOCOL_ERROR],
      ['PUSH_PROMISE', [SETTINGS, [4, 0x5, 0x4, 1]], ErrorCode.PROTOCOL_ERROR],
      ['HEADERS on an even stream', [SETTINGS, [3, 0x1, 0x4, 2]], ErrorCode.PROTOCOL_ERROR],
      ['a frame above 16384 bytes', [SETTINGS, [16385, 0xfa, 0, 0]], ErrorCode.FRAME_SIZE_ERROR],
      ['SETTINGS not a multiple of 6', [[5, 0x4, 0, 0]], ErrorCode.FRAME_SIZE_ERROR],
      ['SETTINGS on a stream', [[0, 0x4, 0, 1]], ErrorCode.PROTOCOL_ERROR],
      ['SETTINGS ACK with a payload', [SETTINGS, [6, 0x4, 0x1, 0]], ErrorCode.FRAME_SIZE_ERROR],
      ['SETTINGS_ENABLE_PUSH of 2', [[6, 0x4, 0, 0, '000200000002']], ErrorCode.PROTOCOL_ERROR],
      ['SETTINGS_INITIAL_WINDOW_SIZE of 2^31', [[6, 0x4, 0, 0, '000480000000']], ErrorCode.FLOW_CONTROL_ERROR],
      ['SETTINGS_MAX_FRAME_SIZE below 16384', [[6, 0x4, 0, 0, '000500000100']], ErrorCode.PROTOCOL_ERROR],
      ['PING of 7 bytes', [SETTINGS, [7, 0x6, 0, 0]], ErrorCode.FRAME_SIZE_ERROR],
      ['PING on a stream', [SETTINGS, [8, 0x6, 0, 1]], ErrorCode.PROTOCOL_ERROR],
      ['WINDOW_UPDATE of 0', [SETTINGS, [4, 0x8, 0, 0, '00000000']], ErrorCode.PROTOCOL_ERROR],
      ['WINDOW_UPDATE past 2^31-1', [SETTINGS, [4, 0x8, 0, 0, '7fffffff']], ErrorCode.FLOW_CONTROL_ERROR],
      ['WINDOW_UPDATE on an idle stream', [SETTINGS, [4, 0x8, 0, 1]], ErrorCode.PROTOCOL_ERROR],
      ['PRIORITY on stream 0', [SETTINGS, [5, 0x2, 0, 0]], ErrorCode.PROTOCOL_ERROR],
      ['GOAWAY shorter than 8 bytes', [SETTINGS, [4, 0x7, 0, 0]], ErrorCode.FRAME_SIZE_ERROR],
    ];
    for (const [what, steps, code] of cases) expect(refusal(steps), what).toBe(code);
  });

  it('cuts at the frame header that takes the bytes before the first request past the cap', () => {
    const frame = 1000;
    const fits = Math.floor((MAX_BYTES_BEFORE_FIRST_REQUEST - 9) / (9 + frame));
    const steps: Step[] = [SETTINGS, ...Array.from({ length: fits }, (): Step => [frame, 0xfa, 0, 0])];
    expect(refusal(steps)).toBeUndefined();
    expect(refusal([...steps, [frame, 0xfa, 0, 0]])).toBe(ErrorCode.ENHANCE_YOUR_CALM);
  });
});
