// The v2 store (etcd's v2store): a tree of keys and directories with its own index, one
// more for every write; TTLs; compare-and-swap and compare-and-delete; in-order keys;
// an event history and watchers. Writes arrive in raft order on every member (see
// apply.ts), so every member's store, index and history are the same; expirations run
// when the leader's SYNC request is applied, with the leader's clock.

import { posix } from 'node:path';
import { V2Error, V2ErrorCode } from './errors.js';
import { type Action, type V2Event, EventHistory } from './event.js';
import { type DirNode, type FileNode, type NodeExtern, type UnixNanos, type V2Node, baseName, load, nowNanos, postOrder, repr } from './node.js';
import { type Watcher, WatcherHub } from './watcher.js';

/** Where etcd keeps cluster state ("/0") and client keys ("/1"). */
export const CLUSTER_PREFIX = '/0';
export const KEYS_PREFIX = '/1';

/** etcd treats expirations before 2000-01-01 as none (a zero time.Time is year 1). */
const MIN_EXPIRE_TIME: UnixNanos = 946_684_800_000_000_000n;

export interface TtlOptions {
  /** undefined: no TTL (a set or update without one makes the node permanent) */
  readonly expireTime?: UnixNanos;
  /** keep the value, change only the TTL, and tell no watcher */
  readonly refresh?: boolean;
}

const STAT_NAMES = [
  'getsSuccess', 'getsFail', 'setsSuccess', 'setsFail', 'deleteSuccess', 'deleteFail',
  'updateSuccess', 'updateFail', 'createSuccess', 'createFail', 'compareAndSwapSuccess',
  'compareAndSwapFail', 'compareAndDeleteSuccess', 'compareAndDeleteFail', 'expireCount',
] as const;
type StatName = (typeof STAT_NAMES)[number];
export type V2StoreStats = Record<StatName | 'watchers', number>;

/** A node in a snapshot: directories list their children in order. */
interface NodeJson {
  name: string;
  createdIndex: number;
  modifiedIndex: number;
  /** nanoseconds, as a decimal string */
  expireTime?: string;
  value?: string;
  children?: NodeJson[];
}

/** What a raft snapshot keeps of the v2 store: the tree, its index and its event history. */
export interface V2StoreSnapshot {
  index: number;
  root: NodeJson;
  history: V2Event[];
}

/** path.Clean(path.Join("/", p)) */
export function cleanPath(p: string): string {
  const n = posix.normalize('/' + p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

export class V2Store {
  private root: DirNode;
  private currentIndex = 0;
  private readonly hub = new WatcherHub();
  /** nodes with an expiration (etcd's ttlKeyHeap) */
  private readonly expiring = new Set<V2Node>();
  private readonly readOnly: Set<string>;
  private readonly stats = Object.fromEntries(STAT_NAMES.map((n) => [n, 0])) as Record<StatName, number>;

  constructor(
    private readonly namespaces: readonly string[] = [CLUSTER_PREFIX, KEYS_PREFIX],
    /** the local clock, for the TTLs shown to clients (expiry itself uses the SYNC request's time) */
    private readonly now: () => UnixNanos = nowNanos,
  ) {
    this.root = this.emptyTree();
    this.readOnly = new Set(['/', ...namespaces]);
  }

  private emptyTree(): DirNode {
    const root = newDir('/', 0, undefined, undefined);
    for (const ns of this.namespaces) root.children.set(baseName(ns), newDir(ns, 0, root, undefined));
    return root;
  }

  get index(): number {
    return this.currentIndex;
  }

  hasTtlKeys(): boolean {
    return this.expiring.size > 0;
  }

  jsonStats(): V2StoreStats {
    return { ...this.stats, watchers: this.hub.watcherCount };
  }

  /** Whether a node is at `nodePath` (no stats, no error). */
  exists(nodePath: string): boolean {
    return this.find(cleanPath(nodePath)) !== undefined;
  }

  get(nodePath: string, recursive: boolean, sorted: boolean): V2Event {
    return this.counted('gets', () => {
      const p = cleanPath(nodePath);
      const n = this.lookup(p);
      return this.event('get', p, n.modifiedIndex, this.currentIndex, { node: load(n, recursive, sorted, this.now()) });
    });
  }

  create(nodePath: string, dir: boolean, value: string, unique: boolean, ttl: TtlOptions = {}): V2Event {
    return this.counted('create', () => {
      const e = this.internalCreate(nodePath, dir, value, unique, false, ttl.expireTime, 'create');
      this.hub.notify(e);
      return e;
    });
  }

  set(nodePath: string, dir: boolean, value: string, ttl: TtlOptions = {}): V2Event {
    return this.counted('sets', () => {
      const p = cleanPath(nodePath);
      const existing = this.find(p);
      if (ttl.refresh === true) {
        if (existing === undefined) throw this.keyNotFoundAt(p);
        if (existing.kind === 'file') value = existing.value;
      }
      const prevNode = existing !== undefined ? load(existing, false, false, this.now()) : undefined;
      const created = this.internalCreate(p, dir, value, false, true, ttl.expireTime, 'set');
      const e: V2Event = prevNode !== undefined ? { ...created, prevNode } : created;
      return this.publish(e, ttl.refresh === true);
    });
  }

  update(nodePath: string, newValue: string, ttl: TtlOptions = {}): V2Event {
    return this.counted('update', () => {
      const p = cleanPath(nodePath);
      this.refuseReadOnly(p);
      const n = this.lookup(p);
      if (n.kind === 'dir' && newValue !== '') throw new V2Error(V2ErrorCode.notFile, p, this.currentIndex);
      const next = this.currentIndex + 1;
      const prevNode = repr(n, false, false, this.now());
      // a directory's own modified index stays (etcd's node.Write refuses directories)
      if (n.kind === 'file') {
        if (ttl.refresh !== true) n.value = newValue;
        n.modifiedIndex = next;
      }
      this.setExpiration(n, ttl.expireTime);
      this.currentIndex = next;
      const node: NodeExtern = { ...repr(n, false, false, this.now()), modifiedIndex: next, createdIndex: n.createdIndex };
      return this.publish(this.event('update', p, next, next, { node, prevNode }), ttl.refresh === true);
    });
  }

  compareAndSwap(nodePath: string, prevValue: string, prevIndex: number, value: string, ttl: TtlOptions = {}): V2Event {
    return this.counted('compareAndSwap', () => {
      const p = cleanPath(nodePath);
      this.refuseReadOnly(p);
      const n = this.lookup(p);
      if (n.kind === 'dir') throw new V2Error(V2ErrorCode.notFile, p, this.currentIndex);
      this.compare(n, prevValue, prevIndex);
      const prevNode = repr(n, false, false, this.now());
      this.currentIndex++;
      n.value = ttl.refresh === true ? n.value : value;
      n.modifiedIndex = this.currentIndex;
      this.setExpiration(n, ttl.expireTime);
      const node = repr(n, false, false, this.now());
      return this.publish(this.event('compareAndSwap', p, this.currentIndex, this.currentIndex, { node, prevNode }), ttl.refresh === true);
    });
  }

  delete(nodePath: string, dir: boolean, recursive: boolean): V2Event {
    return this.counted('delete', () => {
      const p = cleanPath(nodePath);
      this.refuseReadOnly(p);
      const n = this.lookup(p);
      if (n.kind === 'dir') {
        if (!dir && !recursive) throw new V2Error(V2ErrorCode.notFile, p, this.currentIndex);
        if (n.children.size > 0 && !recursive) throw new V2Error(V2ErrorCode.dirNotEmpty, p, this.currentIndex);
      }
      const next = this.currentIndex + 1;
      const e = this.event('delete', p, next, next, {
        node: n.kind === 'dir' ? { key: p, dir: true, modifiedIndex: next, createdIndex: n.createdIndex } : { key: p, modifiedIndex: next, createdIndex: n.createdIndex },
        prevNode: repr(n, false, false, this.now()),
      });
      this.removeTree(n, e);
      this.currentIndex = next;
      this.hub.notify(e);
      return e;
    });
  }

  compareAndDelete(nodePath: string, prevValue: string, prevIndex: number): V2Event {
    return this.counted('compareAndDelete', () => {
      const p = cleanPath(nodePath);
      const n = this.lookup(p);
      if (n.kind === 'dir') throw new V2Error(V2ErrorCode.notFile, p, this.currentIndex);
      this.compare(n, prevValue, prevIndex);
      this.currentIndex++;
      const e = this.event('compareAndDelete', p, this.currentIndex, this.currentIndex, {
        node: { key: p, modifiedIndex: this.currentIndex, createdIndex: n.createdIndex },
        prevNode: repr(n, false, false, this.now()),
      });
      this.removeTree(n, e);
      this.hub.notify(e);
      return e;
    });
  }

  /** Removes every node whose expiration is at or before `cutoff`, one event each (a SYNC request). */
  deleteExpiredKeys(cutoff: UnixNanos): V2Event[] {
    const due = [...this.expiring]
      .filter((n) => n.expireTime! <= cutoff)
      .sort((a, b) => (a.expireTime! < b.expireTime! ? -1 : a.expireTime! > b.expireTime! ? 1 : a.path < b.path ? -1 : 1));
    const events: V2Event[] = [];
    for (const n of due) {
      if (!this.expiring.has(n)) continue; // went with an expired directory above it
      this.currentIndex++;
      const e = this.event('expire', n.path, this.currentIndex, this.currentIndex, {
        node: { key: n.path, ...(n.kind === 'dir' ? { dir: true as const } : {}), modifiedIndex: this.currentIndex, createdIndex: n.createdIndex },
        prevNode: repr(n, false, false, this.now()),
      });
      this.removeTree(n, e);
      this.stats.expireCount++;
      this.hub.notify(e);
      events.push(e);
    }
    return events;
  }

  /**
   * Watches `key` from index `since` (0: from the next write). A write already in the
   * history answers at once; one older than the history's window is a 401.
   */
  watch(key: string, recursive: boolean, stream: boolean, since: number): Watcher {
    const p = cleanPath(key);
    const from = since === 0 ? this.currentIndex + 1 : since;
    try {
      return this.hub.watch(p, recursive, stream, from, this.currentIndex);
    } catch (err) {
      if (err instanceof V2Error) throw new V2Error(err.errorCode, err.cause, this.currentIndex);
      throw err;
    }
  }

  // ---------------------------------------------------------------- snapshots

  save(): V2StoreSnapshot {
    return { index: this.currentIndex, root: toJson(this.root), history: this.hub.history.toJSON() };
  }

  /** Replaces the whole store with a snapshot's; watchers stay, as etcd's do. */
  recover(snap: V2StoreSnapshot): void {
    if (typeof snap.index !== 'number' || typeof snap.root !== 'object' || !Array.isArray(snap.history)) {
      throw new Error('not a v2 store snapshot');
    }
    this.expiring.clear();
    const root = fromJson(snap.root, '/', undefined);
    if (root.kind !== 'dir') throw new Error('the v2 store snapshot root is not a directory');
    this.root = root;
    for (const n of postOrder(root)) if (n.expireTime !== undefined) this.expiring.add(n);
    this.currentIndex = snap.index;
    this.hub.history = EventHistory.fromJSON(snap.history);
  }

  // ---------------------------------------------------------------- internals

  private internalCreate(
    nodePath: string,
    dir: boolean,
    value: string,
    unique: boolean,
    replace: boolean,
    expireTime: UnixNanos | undefined,
    action: Action,
  ): V2Event {
    const next = this.currentIndex + 1;
    // in-order keys: named by the index that creates them, zero-padded to sort as text
    const p = cleanPath(unique ? `${nodePath}/${String(next).padStart(20, '0')}` : nodePath);
    this.refuseReadOnly(p);
    const expires = expireTime !== undefined && expireTime >= MIN_EXPIRE_TIME ? expireTime : undefined;
    const parent = this.ensureDir(posix.dirname(p));
    const name = baseName(p);
    const existing = parent.children.get(name);
    if (existing !== undefined) {
      if (!replace) throw new V2Error(V2ErrorCode.nodeExist, p, this.currentIndex);
      if (existing.kind === 'dir') throw new V2Error(V2ErrorCode.notFile, p, this.currentIndex);
      this.detach(existing);
    }
    const n: V2Node = dir ? newDir(p, next, parent, expires) : newFile(p, value, next, parent, expires);
    parent.children.set(name, n);
    if (expires !== undefined) this.expiring.add(n);
    this.currentIndex = next;
    return this.event(action, p, next, next, { node: repr(n, false, false, this.now()) });
  }

  /** The directory at `dirPath`, made (with the index of the write that makes it) if missing. */
  private ensureDir(dirPath: string): DirNode {
    let d = this.root;
    for (const seg of dirPath.split('/')) {
      if (seg === '') continue;
      const child = d.children.get(seg);
      if (child === undefined) {
        const made = newDir(posix.join(d.path, seg), this.currentIndex + 1, d, undefined);
        d.children.set(seg, made);
        d = made;
      } else if (child.kind === 'dir') {
        d = child;
      } else {
        throw new V2Error(V2ErrorCode.notDir, child.path, this.currentIndex);
      }
    }
    return d;
  }

  private find(p: string): V2Node | undefined {
    try {
      return this.lookup(p);
    } catch (err) {
      if (err instanceof V2Error && err.errorCode === V2ErrorCode.keyNotFound) return undefined;
      throw err;
    }
  }

  /** The node at a clean path: 100 if missing, 104 if a file is in the way. */
  private lookup(p: string): V2Node {
    let n: V2Node = this.root;
    for (const seg of p.split('/')) {
      if (seg === '') continue;
      if (n.kind !== 'dir') throw new V2Error(V2ErrorCode.notDir, n.path, this.currentIndex);
      const child: V2Node | undefined = n.children.get(seg);
      if (child === undefined) throw new V2Error(V2ErrorCode.keyNotFound, posix.join(n.path, seg), this.currentIndex);
      n = child;
    }
    return n;
  }

  private keyNotFoundAt(p: string): V2Error {
    return new V2Error(V2ErrorCode.keyNotFound, p, this.currentIndex);
  }

  private refuseReadOnly(p: string): void {
    if (this.readOnly.has(p)) throw new V2Error(V2ErrorCode.rootReadOnly, '/', this.currentIndex);
  }

  private compare(n: FileNode, prevValue: string, prevIndex: number): void {
    const indexMatch = prevIndex === 0 || n.modifiedIndex === prevIndex;
    const valueMatch = prevValue === '' || n.value === prevValue;
    if (indexMatch && valueMatch) return;
    const cause = !valueMatch && !indexMatch
      ? `[${prevValue} != ${n.value}] [${prevIndex} != ${n.modifiedIndex}]`
      : !valueMatch
        ? `[${prevValue} != ${n.value}]`
        : `[${prevIndex} != ${n.modifiedIndex}]`;
    throw new V2Error(V2ErrorCode.testFailed, cause, this.currentIndex);
  }

  /** etcd's UpdateTTL: a write without a TTL makes the node permanent. */
  private setExpiration(n: V2Node, expireTime: UnixNanos | undefined): void {
    const expires = expireTime !== undefined && expireTime >= MIN_EXPIRE_TIME ? expireTime : undefined;
    n.expireTime = expires;
    if (expires === undefined) this.expiring.delete(n);
    else this.expiring.add(n);
  }

  /** Unlinks `n` and everything under it, telling watchers of each removed path. */
  private removeTree(n: V2Node, e: V2Event): void {
    for (const x of postOrder(n)) {
      this.expiring.delete(x);
      this.hub.notifyPath(e, x.path, true);
    }
    this.detach(n);
  }

  private detach(n: V2Node): void {
    for (const x of postOrder(n)) this.expiring.delete(x);
    const parent = n.parent;
    if (parent !== undefined && parent.children.get(baseName(n.path)) === n) parent.children.delete(baseName(n.path));
  }

  /** A TTL refresh goes in the history but wakes no watcher. */
  private publish(e: V2Event, refresh: boolean): V2Event {
    if (!refresh) {
      this.hub.notify(e);
      return e;
    }
    const r: V2Event = { ...e, refresh: true };
    this.hub.record(r);
    return r;
  }

  /** `index` places the event in the history (the node's modified index); `etcdIndex` is the store's index to report. */
  private event(action: Action, p: string, index: number, etcdIndex: number, body: { node: NodeExtern; prevNode?: NodeExtern }): V2Event {
    return {
      action,
      node: body.node,
      ...(body.prevNode !== undefined ? { prevNode: body.prevNode } : {}),
      etcdIndex,
      path: p,
      index,
      prevDir: body.prevNode?.dir === true,
    };
  }

  private counted(op: 'gets' | 'sets' | 'create' | 'update' | 'delete' | 'compareAndSwap' | 'compareAndDelete', fn: () => V2Event): V2Event {
    try {
      const e = fn();
      this.stats[`${op}Success`]++;
      return e;
    } catch (err) {
      this.stats[`${op}Fail`]++;
      throw err;
    }
  }
}

function newDir(path: string, index: number, parent: DirNode | undefined, expireTime: UnixNanos | undefined): DirNode {
  return { kind: 'dir', path, createdIndex: index, modifiedIndex: index, expireTime, parent, children: new Map() };
}

function newFile(path: string, value: string, index: number, parent: DirNode, expireTime: UnixNanos | undefined): FileNode {
  return { kind: 'file', path, value, createdIndex: index, modifiedIndex: index, expireTime, parent };
}

function toJson(n: V2Node): NodeJson {
  const j: NodeJson = { name: baseName(n.path), createdIndex: n.createdIndex, modifiedIndex: n.modifiedIndex };
  if (n.expireTime !== undefined) j.expireTime = n.expireTime.toString();
  if (n.kind === 'file') j.value = n.value;
  else j.children = [...n.children.values()].map(toJson);
  return j;
}

function fromJson(j: NodeJson, path: string, parent: DirNode | undefined): V2Node {
  const expireTime = j.expireTime !== undefined ? BigInt(j.expireTime) : undefined;
  if (j.children === undefined) {
    if (parent === undefined || typeof j.value !== 'string') throw new Error(`bad v2 store node ${path}`);
    return newFile(path, j.value, j.createdIndex, parent, expireTime);
  }
  const d = newDir(path, j.createdIndex, parent, expireTime);
  d.modifiedIndex = j.modifiedIndex;
  for (const c of j.children) {
    if (typeof c.name !== 'string' || c.name === '' || c.name.includes('/')) throw new Error(`bad v2 store node name under ${path}`);
    const child = fromJson(c, posix.join(path, c.name), d);
    child.modifiedIndex = c.modifiedIndex;
    d.children.set(c.name, child);
  }
  return d;
}
