// gRPC status codes (google.golang.org/grpc/codes), as the wire carries them in
// grpc-status. The member serves gRPC with its own HTTP/2 code (server.ts), so it needs
// only these numbers from grpc-js; importing grpc-js for them cost a tenth of a second of
// CPU at every start. Same values as grpc-js's `status`, which the proxy and the gateway's
// upstream calls use (test/grpc/codes.test.ts holds them equal).

export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type Code = (typeof Code)[keyof typeof Code];
