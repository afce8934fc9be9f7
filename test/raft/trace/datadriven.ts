// A small reader and writer for datadriven test files (the format of
// cockroachdb/datadriven, which etcd-io/raft's testdata uses). A file is a
// sequence of directives separated by blank lines, with `#` comment lines between:
//
//   # what happens next, and why it matters
//   cmd arg key=val key=(a,b,c)
//   ----
//   expected output, one or more non-blank lines
//
// Running a file hands each directive to a handler and compares what it returns
// with the expected text. Rewriting a file keeps the comments and layout and
// replaces each expected text with the actual one, so that a deliberate change
// of behaviour is reviewed as a diff of the file.

import { readFileSync } from 'node:fs';

/** One argument: a bare word (no vals), `key=val` or `key=(v1,v2)`. */
export interface CmdArg {
  readonly key: string;
  readonly vals?: readonly string[];
}

export interface Directive {
  /** `file:line` of the command line, for error messages */
  readonly pos: string;
  readonly cmd: string;
  readonly args: readonly CmdArg[];
  /** the expected output, lines joined with '\n' */
  readonly expected: string;
}

/** A file as read: comments and blank lines kept verbatim, so a rewrite changes only outputs. */
type Chunk =
  | { readonly kind: 'text'; readonly line: string }
  | { readonly kind: 'directive'; readonly d: Directive; readonly cmdLine: string };

export interface TraceFile {
  readonly path: string;
  readonly chunks: readonly Chunk[];
}

export function parseFile(path: string): TraceFile {
  const lines = readFileSync(path, 'utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const chunks: Chunk[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.trim() === '' || line.startsWith('#')) {
      chunks.push({ kind: 'text', line });
      i++;
      continue;
    }
    const pos = `${path}:${i + 1}`;
    if (lines[i + 1] !== '----') throw new Error(`${pos}: a command must be followed by a '----' line`);
    i += 2;
    const expected: string[] = [];
    while (i < lines.length && lines[i]!.trim() !== '') expected.push(lines[i++]!);
    const [cmd, ...rest] = line.trim().split(/\s+/);
    const d: Directive = { pos, cmd: cmd!, args: rest.map((a) => parseArg(pos, a)), expected: expected.join('\n') };
    chunks.push({ kind: 'directive', cmdLine: line, d });
  }
  return { path, chunks };
}

function parseArg(pos: string, tok: string): CmdArg {
  const eq = tok.indexOf('=');
  if (eq < 0) return { key: tok };
  const key = tok.slice(0, eq);
  const val = tok.slice(eq + 1);
  if (key === '' || val === '') throw new Error(`${pos}: malformed argument '${tok}'`);
  if (!val.startsWith('(')) return { key, vals: [val] };
  if (!val.endsWith(')')) throw new Error(`${pos}: unclosed list in '${tok}'`);
  const inner = val.slice(1, -1);
  return { key, vals: inner === '' ? [] : inner.split(',') };
}

/**
 * Run every directive of f in order. `check` compares one actual output with the
 * expected one (and throws on a mismatch); an empty output is written as "ok".
 * Returns the file text with every expected output replaced by the actual one.
 */
export function runFile(
  f: TraceFile,
  handle: (d: Directive) => string,
  check: (d: Directive, actual: string) => void,
): string {
  const out: string[] = [];
  for (const c of f.chunks) {
    if (c.kind === 'text') {
      out.push(c.line);
      continue;
    }
    const actual = handle(c.d) || 'ok';
    if (actual.split('\n').some((l) => l.trim() === '')) {
      // A blank line would end the block: the file could not be read back.
      throw new Error(`${c.d.pos}: ${c.d.cmd} produced a blank output line`);
    }
    check(c.d, actual);
    out.push(c.cmdLine, '----', actual);
  }
  return `${out.join('\n')}\n`;
}
