// The v2 store's tree: a node is a file (a value) or a directory (children by name);
// either may carry an expiration. What clients see of a node is its NodeExtern, whose
// JSON keeps etcd's field order and omitted-when-empty fields.

/** Nanoseconds since the Unix epoch, as etcd's v2 requests carry times (int64). */
export type UnixNanos = bigint;

interface NodeCommon {
  /** the full store path, e.g. "/1/foo/bar" */
  readonly path: string;
  readonly createdIndex: number;
  modifiedIndex: number;
  /** undefined: permanent */
  expireTime: UnixNanos | undefined;
  /** undefined only for the root */
  parent: DirNode | undefined;
}

export interface FileNode extends NodeCommon {
  readonly kind: 'file';
  value: string;
}

export interface DirNode extends NodeCommon {
  readonly kind: 'dir';
  readonly children: Map<string, V2Node>;
}

export type V2Node = FileNode | DirNode;

/** A node as clients see it (etcd's NodeExtern). */
export interface NodeExtern {
  key?: string;
  value?: string;
  dir?: true;
  /** RFC 3339 with nanoseconds, UTC */
  expiration?: string;
  ttl?: number;
  nodes?: NodeExtern[];
  modifiedIndex?: number;
  createdIndex?: number;
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Names starting with "_" are hidden: listings skip them and recursive watches above them do not see them. */
export function isHiddenName(name: string): boolean {
  return name.startsWith('_');
}

export function nowNanos(): UnixNanos {
  return BigInt(Date.now()) * 1_000_000n;
}

/** etcd's TTL: the seconds left, rounded up (so 1..n while alive). */
export function ttlSeconds(expireTime: UnixNanos, now: UnixNanos): number {
  const left = expireTime - now;
  let secs = left / 1_000_000_000n;
  if (left % 1_000_000_000n > 0n) secs += 1n;
  return Number(secs);
}

/** Go's time.Time JSON: RFC 3339 in UTC with the fraction's trailing zeros dropped. */
export function rfc3339Nano(t: UnixNanos): string {
  let secs = t / 1_000_000_000n;
  let frac = t % 1_000_000_000n;
  if (frac < 0n) {
    frac += 1_000_000_000n;
    secs -= 1n;
  }
  const base = new Date(Number(secs) * 1000).toISOString().slice(0, 19);
  const digits = frac === 0n ? '' : '.' + frac.toString().padStart(9, '0').replace(/0+$/, '');
  return `${base}${digits}Z`;
}

/** Adds the expiration and TTL of a node that has one. */
function withExpiration(e: NodeExtern, n: V2Node, now: UnixNanos): NodeExtern {
  if (n.expireTime === undefined) return e;
  const ttl = ttlSeconds(n.expireTime, now);
  return { ...e, expiration: rfc3339Nano(n.expireTime), ...(ttl !== 0 ? { ttl } : {}) };
}

function indexes(n: V2Node): Pick<NodeExtern, 'modifiedIndex' | 'createdIndex'> {
  return {
    ...(n.modifiedIndex !== 0 ? { modifiedIndex: n.modifiedIndex } : {}),
    ...(n.createdIndex !== 0 ? { createdIndex: n.createdIndex } : {}),
  };
}

function keyOf(n: V2Node): Pick<NodeExtern, 'key'> {
  return n.path !== '' ? { key: n.path } : {};
}

/**
 * A node for clients (etcd's Repr): a directory lists its visible children only when
 * `recursive`, in the order they were added unless `sorted`.
 */
export function repr(n: V2Node, recursive: boolean, sorted: boolean, now: UnixNanos): NodeExtern {
  if (n.kind === 'file') {
    const e: NodeExtern = { ...keyOf(n), value: n.value };
    return { ...withExpiration(e, n, now), ...indexes(n) };
  }
  const e: NodeExtern = { ...keyOf(n), dir: true };
  const nodes = recursive ? listChildren(n, true, sorted, now) : [];
  return { ...withExpiration(e, n, now), ...(nodes.length > 0 ? { nodes } : {}), ...indexes(n) };
}

/** The answer to a get (etcd's loadInternalNode): a directory always lists its visible children. */
export function load(n: V2Node, recursive: boolean, sorted: boolean, now: UnixNanos): NodeExtern {
  if (n.kind === 'file') return repr(n, false, false, now);
  const e: NodeExtern = { ...keyOf(n), dir: true };
  const nodes = listChildren(n, recursive, sorted, now);
  return { ...withExpiration(e, n, now), ...(nodes.length > 0 ? { nodes } : {}), ...indexes(n) };
}

function listChildren(d: DirNode, recursive: boolean, sorted: boolean, now: UnixNanos): NodeExtern[] {
  const out: NodeExtern[] = [];
  for (const [name, child] of d.children) if (!isHiddenName(name)) out.push(repr(child, recursive, sorted, now));
  if (sorted) out.sort((a, b) => ((a.key ?? '') < (b.key ?? '') ? -1 : (a.key ?? '') > (b.key ?? '') ? 1 : 0));
  return out;
}

/** Every node under (and including) `n`, children before their directory, as etcd removes them. */
export function* postOrder(n: V2Node): Generator<V2Node> {
  if (n.kind === 'dir') for (const c of [...n.children.values()]) yield* postOrder(c);
  yield n;
}
