// Reading a /v2/keys request as etcd's parseKeyRequest does: form fields from a
// url-encoded body (PUT and POST) before the query string's, Go's strconv rules for
// booleans and integers, and etcd's error for each bad field.

import type http from 'node:http';
import { V2Error, V2ErrorCode } from '../v2store/index.js';
import { readBody } from './respond.js';

/** Values by name, body first (Go's Request.Form). */
export type Form = Map<string, string[]>;

export async function parseForm(req: http.IncomingMessage, url: URL): Promise<Form> {
  const form: Form = new Map();
  const add = (params: URLSearchParams) => {
    for (const [k, v] of params) {
      const list = form.get(k);
      if (list) list.push(v);
      else form.set(k, [v]);
    }
  };
  const method = req.method ?? '';
  const ctype = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if ((method === 'PUT' || method === 'POST' || method === 'PATCH') && ctype === 'application/x-www-form-urlencoded') {
    try {
      add(new URLSearchParams(await readBody(req)));
    } catch (err) {
      throw new V2Error(V2ErrorCode.invalidForm, (err as Error).message, 0);
    }
  }
  add(url.searchParams);
  return form;
}

/** Go's strconv.ParseBool */
function parseBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}

/** Go's strconv.ParseUint(v, 10, 64), as a bigint */
function parseUint(v: string): bigint | undefined {
  if (!/^[0-9]+$/.test(v)) return undefined;
  const n = BigInt(v);
  return n < 1n << 64n ? n : undefined;
}

export function first(form: Form, name: string): string {
  return form.get(name)?.[0] ?? '';
}

/** A boolean field: false when absent, etcd's 209 when not a Go bool. */
export function getBool(form: Form, name: string, cause = `invalid value for "${name}"`): boolean {
  const v = form.get(name);
  if (v === undefined) return false;
  const b = parseBool(v[0]!);
  if (b === undefined) throw new V2Error(V2ErrorCode.invalidField, cause, 0);
  return b;
}

/** An unsigned field: 0 when absent, `code` when not a number. */
export function getUint(form: Form, name: string, code: V2ErrorCode, cause = `invalid value for "${name}"`): bigint {
  const v = form.get(name);
  if (v === undefined) return 0n;
  const n = parseUint(v[0]!);
  if (n === undefined) throw new V2Error(code, cause, 0);
  return n;
}
