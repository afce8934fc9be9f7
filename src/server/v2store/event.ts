// What a v2 store operation did (etcd's Event), and the window of the last 1000 write
// events that `waitIndex` watches are answered from.

import { V2Error, V2ErrorCode } from './errors.js';
import type { NodeExtern } from './node.js';

export type Action = 'get' | 'create' | 'set' | 'update' | 'delete' | 'compareAndSwap' | 'compareAndDelete' | 'expire';

export interface V2Event {
  readonly action: Action;
  readonly node: NodeExtern;
  readonly prevNode?: NodeExtern;
  /** a TTL refresh: recorded in the history but never sent to watchers */
  readonly refresh?: true;
  /** the store index when the event was made or delivered (the X-Etcd-Index header), not in its JSON */
  readonly etcdIndex: number;
  /** the store path of the node (node.key), kept for matching */
  readonly path: string;
  /** the node's modified index: the event's place in the history */
  readonly index: number;
  /** the deleted or expired node was a directory */
  readonly prevDir: boolean;
}

/** An event's JSON body, in etcd's field order. */
export function eventJson(e: V2Event): { action: Action; node: NodeExtern; prevNode?: NodeExtern; refresh?: true } {
  return { action: e.action, node: e.node, ...(e.prevNode ? { prevNode: e.prevNode } : {}), ...(e.refresh ? { refresh: true } : {}) };
}

/** A set that created the node answers 201 Created, as a create does. */
export function isCreated(e: V2Event): boolean {
  return e.action === 'create' || (e.action === 'set' && e.prevNode === undefined);
}

/** Does the event concern `key` (or, when recursive, a key under it)? etcd's EventHistory.scan test. */
export function eventMatches(e: V2Event, key: string, recursive: boolean): boolean {
  if (e.path === key) return true;
  if (recursive && e.path.startsWith(key.endsWith('/') ? key : key + '/')) return true;
  // removing a directory removes what a watcher below it watched
  return (e.action === 'delete' || e.action === 'expire') && e.prevDir && key.startsWith(e.path);
}

export const HISTORY_CAPACITY = 1000;

/** The last HISTORY_CAPACITY write events, oldest first. */
export class EventHistory {
  private events: V2Event[] = [];

  constructor(private readonly capacity = HISTORY_CAPACITY) {}

  add(e: V2Event): void {
    this.events.push(e);
    if (this.events.length > this.capacity) this.events.shift();
  }

  /** the index of the oldest event kept (0 when none) */
  get startIndex(): number {
    return this.events[0]?.index ?? 0;
  }

  get lastIndex(): number {
    return this.events.at(-1)?.index ?? 0;
  }

  /**
   * The first event at or after `since` that concerns `key`; undefined if none has
   * happened yet. Throws 401 when `since` is older than the window.
   */
  scan(key: string, recursive: boolean, since: number): V2Event | undefined {
    if (since < this.startIndex) {
      throw new V2Error(V2ErrorCode.eventIndexCleared, `the requested history has been cleared [${this.startIndex}/${since}]`, 0);
    }
    if (since > this.lastIndex) return undefined;
    return this.events.find((e) => e.index >= since && !e.refresh && eventMatches(e, key, recursive));
  }

  toJSON(): V2Event[] {
    return this.events;
  }

  static fromJSON(events: V2Event[], capacity = HISTORY_CAPACITY): EventHistory {
    const h = new EventHistory(capacity);
    h.events = events.slice(-capacity);
    return h;
  }
}
