// How the Lock and Election services run a call: its cancellation as an AbortSignal for
// the recipes that wait, and errors sent as etcd sends them from these services.

import { EventEmitter } from 'node:events';
import { EtcdError } from '../errors.js';
import { asUnknown } from '../concurrency/errors.js';
import { translate } from './common.js';

/**
 * An AbortSignal that fires when the call's client goes away or its deadline passes.
 * The gRPC server's calls and the gateway's emit 'cancelled' then; UnaryCall does not
 * promise it (most handlers never wait long enough to care), so it is looked for.
 */
export function cancellation(call: object): { signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  const abort = (): void => controller.abort(new Error('the client cancelled the call'));
  if ((call as { cancelled?: unknown }).cancelled === true) abort();
  if (!(call instanceof EventEmitter)) return { signal: controller.signal, release: () => undefined };
  call.once('cancelled', abort);
  return { signal: controller.signal, release: () => call.off('cancelled', abort) };
}

/**
 * Runs `fn` with the call's cancellation. Its errors leave as etcd's Lock and Election
 * services return them: etcd's in-process client hands them over as plain errors.
 */
export async function serveInProcess<T>(call: object, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const { signal, release } = cancellation(call);
  try {
    return await fn(signal);
  } catch (err) {
    throw asServiceError(err);
  } finally {
    release();
  }
}

/** An error as etcd's Lock and Election services return it: etcd's message, code Unknown. */
export function asServiceError(err: unknown): unknown {
  const e = translate(err);
  return e instanceof EtcdError ? asUnknown(e) : e;
}
