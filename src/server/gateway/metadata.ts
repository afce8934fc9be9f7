// The gRPC metadata a gateway request carries to the member's handlers, with grpc-js
// Metadata's rules for what a key and a value may be (so the gateway accepts and refuses
// the same headers as before), without loading grpc-js into every member for it.

import type { CallMetadata } from '../grpc/call.js';

const LEGAL_KEY = /^[:0-9a-z_.-]+$/;
const LEGAL_TEXT_VALUE = /^[ -~]*$/;

export class GatewayMetadata implements CallMetadata {
  private readonly entries = new Map<string, string[]>();

  /** Appends a value to `key` (lower-cased); throws on what grpc-js's Metadata refuses. */
  add(key: string, value: string): void {
    const k = validated(key, value);
    const values = this.entries.get(k);
    if (values === undefined) this.entries.set(k, [value]);
    else values.push(value);
  }

  /** Replaces the values of `key` with `value`; throws as add does. */
  set(key: string, value: string): void {
    this.entries.set(validated(key, value), [value]);
  }

  get(key: string): string[] {
    return this.entries.get(key.toLowerCase()) ?? [];
  }
}

function validated(key: string, value: string): string {
  const k = key.toLowerCase();
  if (!LEGAL_KEY.test(k)) throw new Error(`Metadata key "${k}" contains illegal characters`);
  // header values are strings: binary (-bin) metadata would need them base64-decoded
  if (k.endsWith('-bin')) throw new Error("keys that end with '-bin' must have Buffer values");
  if (!LEGAL_TEXT_VALUE.test(value)) throw new Error(`Metadata string value "${value}" contains illegal characters`);
  return k;
}
