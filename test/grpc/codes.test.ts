// The member's gRPC status numbers (src/server/grpc/codes.ts) are grpc-js's, which the
// proxy, the gateway mode and every client use: the same name means the same number.

import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { Code } from '../../src/server/grpc/codes.js';

describe('gRPC status codes', () => {
  it('are grpc-js status values, all of them', () => {
    const grpcJs = Object.fromEntries(Object.entries(status).filter(([name]) => Number.isNaN(Number(name))));
    expect(Code).toEqual(grpcJs);
  });
});
