// Typed access to a directive's arguments. Every argument a trace writes must be
// consumed by its command: a misspelt key is an error, never silently ignored.

import type { Directive } from './datadriven.js';

export class Args {
  private readonly words: string[] = [];
  private readonly kv = new Map<string, readonly string[]>();
  private readonly usedKeys = new Set<string>();
  private wordsUsed = 0;

  constructor(private readonly d: Directive) {
    for (const a of d.args) {
      if (a.vals === undefined) this.words.push(a.key);
      else if (this.kv.has(a.key)) throw this.error(`argument ${a.key} given twice`);
      else this.kv.set(a.key, a.vals);
    }
  }

  error(msg: string): Error {
    return new Error(`${this.d.pos}: ${this.d.cmd}: ${msg}`);
  }

  /** the i-th bare word (required) */
  word(i: number, what: string): string {
    const w = this.words[i];
    if (w === undefined) throw this.error(`missing ${what}`);
    this.wordsUsed = Math.max(this.wordsUsed, i + 1);
    return w;
  }

  /** the bare words from the i-th on */
  wordsFrom(i: number): string[] {
    this.wordsUsed = Math.max(this.wordsUsed, this.words.length);
    return this.words.slice(i);
  }

  /** the i-th bare word as a node ID */
  id(i: number): bigint {
    return this.toId(this.word(i, 'node ID'));
  }

  /** every bare word as a node ID */
  ids(): bigint[] {
    return this.wordsFrom(0).map((w) => this.toId(w));
  }

  int(key: string, def: number): number {
    const v = this.single(key);
    if (v === undefined) return def;
    if (!/^[0-9]+$/.test(v)) throw this.error(`${key} must be a non-negative integer, got ${v}`);
    return Number(v);
  }

  bool(key: string): boolean {
    const v = this.single(key);
    if (v === undefined || v === 'false') return false;
    if (v === 'true') return true;
    throw this.error(`${key} must be true or false, got ${v}`);
  }

  oneOf<T extends string>(key: string, allowed: readonly T[], def: T): T {
    const v = this.single(key);
    if (v === undefined) return def;
    const found = allowed.find((a) => a === v);
    if (found === undefined) throw this.error(`${key} must be one of ${allowed.join(', ')}, got ${v}`);
    return found;
  }

  idList(key: string): bigint[] {
    this.usedKeys.add(key);
    return (this.kv.get(key) ?? []).map((v) => this.toId(v));
  }

  /** Refuse arguments the command did not read. */
  finish(): void {
    if (this.wordsUsed < this.words.length) throw this.error(`unexpected argument ${this.words[this.wordsUsed]}`);
    for (const k of this.kv.keys()) if (!this.usedKeys.has(k)) throw this.error(`unknown argument ${k}`);
  }

  private single(key: string): string | undefined {
    this.usedKeys.add(key);
    const vals = this.kv.get(key);
    if (vals === undefined) return undefined;
    if (vals.length !== 1) throw this.error(`${key} takes one value`);
    return vals[0];
  }

  private toId(w: string): bigint {
    if (!/^[1-9][0-9]*$/.test(w)) throw this.error(`node IDs are positive integers, got ${w}`);
    return BigInt(w);
  }
}
