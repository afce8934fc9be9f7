// The datadriven reader and rewriter the raft traces rely on: a rewrite must change
// expected outputs only, and a malformed file must fail with its position.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Directive, parseFile, runFile } from './datadriven.js';

const dir = mkdtempSync(join(tmpdir(), 'datadriven-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** Prints each argument on its own line: bare words as they are, lists joined with '|'. */
const echo = (d: Directive): string =>
  d.args.map((a) => (a.vals === undefined ? a.key : `${a.key}=${a.vals.join('|')}`)).join('\n');

describe('datadriven files', () => {
  it('rewriting replaces expected outputs and keeps comments and blank lines; empty output is "ok"', () => {
    const p = file('a.txt', '# one\ncmd x k=v l=(1,2)\n----\nstale\nlines\n\n\n# two\nnothing\n----\n');
    const seen: string[] = [];
    const text = runFile(parseFile(p), echo, (d, actual) => seen.push(`${d.cmd}:${d.expected}=>${actual}`));
    expect(text).toBe('# one\ncmd x k=v l=(1,2)\n----\nx\nk=v\nl=1|2\n\n\n# two\nnothing\n----\nok\n');
    expect(seen).toEqual(['cmd:stale\nlines=>x\nk=v\nl=1|2', 'nothing:=>ok']);
    // The rewritten text reads back with the new outputs as expected ones.
    const again = file('b.txt', text);
    const back = parseFile(again).chunks.flatMap((c) => (c.kind === 'directive' ? [c.d.expected] : []));
    expect(back).toEqual(['x\nk=v\nl=1|2', 'ok']);
  });

  it('a command without its ---- line, or a malformed argument, fails with file and line', () => {
    expect(() => parseFile(file('c.txt', '# c\ncmd\nout\n'))).toThrow(/c\.txt:2: a command must be followed by/);
    expect(() => parseFile(file('d.txt', 'cmd k=(1,2\n----\nok\n'))).toThrow(/d\.txt:1: unclosed list/);
  });

  it('an output with a blank line is refused: the file could not be read back', () => {
    const p = file('e.txt', 'cmd\n----\nok\n');
    expect(() => runFile(parseFile(p), () => 'a\n\nb', () => {})).toThrow(/e\.txt:1: cmd produced a blank output line/);
  });
});
