// v2 watchers: a watch on a key (or, recursive, on everything under it) from an index
// on. A long-poll watch ends with its first event; a stream watch goes on. Each member
// keeps its own watchers (they are not replicated); the store notifies them as it
// applies writes.

import { type V2Event, EventHistory } from './event.js';
import { isHiddenName } from './node.js';

/** Events a watcher may hold undelivered; one more and it is dropped, as etcd's channel of 100. */
const WATCHER_BUFFER = 100;

export class Watcher {
  private readonly queue: V2Event[] = [];
  private wake: (() => void) | undefined;
  private closed = false;

  constructor(
    readonly key: string,
    readonly recursive: boolean,
    readonly stream: boolean,
    readonly sinceIndex: number,
    /** the store index when the watch began (its X-Etcd-Index header) */
    readonly startIndex: number,
    private readonly detach: (w: Watcher) => void,
  ) {}

  /** The next event; undefined once the watcher is removed (or fell behind and was dropped). */
  async next(): Promise<V2Event | undefined> {
    for (;;) {
      const e = this.queue.shift();
      if (e !== undefined) return e;
      if (this.closed) return undefined;
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  remove(): void {
    if (this.closed) return;
    this.closed = true;
    this.detach(this);
    this.signal();
  }

  /** The hub's delivery; a watcher that is full is dropped instead. */
  deliver(e: V2Event): void {
    if (this.closed) return;
    if (this.queue.length >= WATCHER_BUFFER) {
      this.remove();
      return;
    }
    this.queue.push(e);
    this.signal();
  }

  private signal(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}

/** Does a watch on `watchPath` see a write to `keyPath` below it, or is a hidden name in between? */
function hiddenBetween(watchPath: string, keyPath: string): boolean {
  const rest = keyPath.slice(watchPath.length).split('/');
  return rest.some((seg) => seg !== '' && isHiddenName(seg));
}

/** The watchers of one store, by watched path, and its event history. */
export class WatcherHub {
  private readonly byPath = new Map<string, Set<Watcher>>();
  private count = 0;

  constructor(public history: EventHistory = new EventHistory()) {}

  get watcherCount(): number {
    return this.count;
  }

  /**
   * A watch from `since`: if the history already holds a matching event the watcher
   * gets it at once (stamped with the current index) and is not registered.
   */
  watch(key: string, recursive: boolean, stream: boolean, since: number, storeIndex: number): Watcher {
    const past = this.history.scan(key, recursive, since);
    if (past !== undefined) {
      // answered from the history: nothing to register (etcd does the same for streams)
      const w = new Watcher(key, recursive, stream, since, storeIndex, () => undefined);
      w.deliver({ ...past, etcdIndex: storeIndex });
      w.remove();
      return w;
    }
    const w = new Watcher(key, recursive, stream, since, storeIndex, (x) => this.detach(x));
    let set = this.byPath.get(key);
    if (set === undefined) this.byPath.set(key, (set = new Set()));
    set.add(w);
    this.count++;
    return w;
  }

  /** Records a write event and tells the watchers of its key and of every directory above it. */
  notify(e: V2Event): void {
    this.history.add(e);
    let p = '';
    this.notifyPath(e, '/', false);
    for (const seg of e.path.split('/')) {
      if (seg === '') continue;
      p += '/' + seg;
      this.notifyPath(e, p, false);
    }
  }

  /** A refresh is recorded in the history only. */
  record(e: V2Event): void {
    this.history.add(e);
  }

  /** Tells watchers of `path` (a node being removed) about `e`, whatever they watch. */
  notifyPath(e: V2Event, path: string, deleted: boolean): void {
    const set = this.byPath.get(path);
    if (set === undefined) return;
    const original = e.path === path;
    if (!original && hiddenBetween(path, e.path)) return;
    for (const w of [...set]) {
      if (!(w.recursive || original || deleted) || e.index < w.sinceIndex) continue;
      w.deliver(e);
      if (!w.stream) w.remove();
    }
  }

  private detach(w: Watcher): void {
    const set = this.byPath.get(w.key);
    if (set === undefined || !set.delete(w)) return;
    this.count--;
    if (set.size === 0) this.byPath.delete(w.key);
  }
}
