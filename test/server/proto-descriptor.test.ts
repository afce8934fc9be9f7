// proto/etcd-api.json, which the member loads instead of parsing .proto text, is what
// scripts/proto-descriptor.ts makes of the .proto files now: a .proto edited without
// `npm run build` (or a hand-edited descriptor) fails here.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { descriptorFile, descriptorJson } from '../../scripts/proto-descriptor.js';

describe('proto/etcd-api.json', () => {
  it('matches the .proto files it is generated from', () => {
    expect(readFileSync(descriptorFile, 'utf8')).toBe(descriptorJson());
  });
});
