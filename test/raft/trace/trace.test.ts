// Golden traces of the raft core: each testdata/*.txt is a story told in commands
// (see README.md), with the expected log lines, Readies and messages checked in.
// A protocol change shows up as a diff of these files:
//
//   RAFT_TRACE_REWRITE=1 npx vitest run test/raft/trace
//
// rewrites every expected output in place with what the core does now; review the
// diff like code.

import { readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseFile, runFile } from './datadriven.js';
import { InteractionEnv } from './env.js';

const dir = fileURLToPath(new URL('./testdata/', import.meta.url));
const rewrite = process.env.RAFT_TRACE_REWRITE === '1';
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.txt'))
  .sort();

describe('raft golden traces', () => {
  it('has traces to check', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  for (const name of files) {
    it(name, () => {
      const f = parseFile(dir + name);
      const env = new InteractionEnv();
      const text = runFile(
        f,
        (d) => env.handle(d),
        (d, actual) => {
          // In rewrite mode every output is accepted and written back below.
          if (!rewrite) expect(actual, `${d.pos}: ${d.cmd}`).toBe(d.expected);
        },
      );
      if (rewrite) writeFileSync(f.path, text);
    });
  }
});
