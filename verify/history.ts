// The recorded history of a run: every client request with its call and return
// time, and every watch stream with the responses it received. This is the only
// input the checkers see, so it carries exactly what a client observed.
//
// Conventions (the same as etcd's robustness suite):
// - keys and values are ASCII strings; values written by the workload are unique;
// - revisions are numbers (checked to be safe integers when decoded); lease IDs are
//   decimal strings, never lossy numbers;
// - a request that failed or timed out may still have been applied: its `output`
//   is null and its `return` is +Infinity (it stays concurrent with everything after).

export type CompareTarget = 'VERSION' | 'CREATE' | 'MOD' | 'VALUE' | 'LEASE';
export type CompareResult = 'EQUAL' | 'GREATER' | 'LESS' | 'NOT_EQUAL';

export interface KeyValue {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
  /** lease ID as a decimal string, '0' when the key has no lease */
  lease: string;
}

export interface Compare {
  key: string;
  target: CompareTarget;
  result: CompareResult;
  /** a revision or version for VERSION/CREATE/MOD, the value for VALUE, a lease ID for LEASE */
  operand: number | string;
}

/** `end` is the exclusive range end ('' = the single key `key`). */
export type TxnRequestOp =
  | { type: 'range'; key: string; end: string }
  | { type: 'put'; key: string; value: string; lease: string }
  | { type: 'delete'; key: string; end: string };

export type TxnResponseOp =
  | { type: 'range'; kvs: KeyValue[]; count: number }
  | { type: 'put' }
  | { type: 'delete'; deleted: number };

export type KvRequest =
  | { type: 'range'; key: string; end: string; serializable: boolean }
  | { type: 'put'; key: string; value: string; lease: string }
  | { type: 'delete'; key: string; end: string }
  | { type: 'txn'; compare: Compare[]; success: TxnRequestOp[]; failure: TxnRequestOp[] }
  | { type: 'leaseGrant'; id: string; ttl: number }
  | { type: 'leaseRevoke'; id: string };

/** Every response carries the header revision etcd returned. */
export type KvResponse =
  | { type: 'range'; revision: number; kvs: KeyValue[]; count: number }
  | { type: 'put'; revision: number }
  | { type: 'delete'; revision: number; deleted: number }
  /** `results` is null when the outcome was reconstructed rather than observed */
  | { type: 'txn'; revision: number; succeeded: boolean; results: TxnResponseOp[] | null }
  | { type: 'leaseGrant'; revision: number }
  | { type: 'leaseRevoke'; revision: number };

export interface Operation {
  /** index in History.operations */
  id: number;
  client: number;
  /** which endpoint served it, for the timeline */
  endpoint: string;
  input: KvRequest;
  /** ms since the run started */
  call: number;
  /** ms since the run started; Infinity when the outcome is unknown */
  return: number;
  /** null: failed or timed out, may or may not have been applied */
  output: KvResponse | null;
  error?: string;
  /** set when the outcome of a failed request was learned from the watch reference */
  patched?: boolean;
}

export type EventType = 'PUT' | 'DELETE';

export interface WatchEvent {
  type: EventType;
  /** for DELETE only key and modRevision (the deletion revision) are meaningful */
  kv: KeyValue;
  prevKv: KeyValue | null;
}

export interface WatchRequestParams {
  key: string;
  /** '' = the single key */
  end: string;
  /** 0 = from the current revision + 1 */
  startRevision: number;
  prevKv: boolean;
  progressNotify: boolean;
  filters: ('NOPUT' | 'NODELETE')[];
}

export interface WatchResponseRecord {
  time: number;
  headerRevision: number;
  watchId: string;
  created: boolean;
  canceled: boolean;
  compactRevision: number;
  cancelReason: string;
  /** true for an answer to a progress request or a timed progress notification */
  progress: boolean;
  events: WatchEvent[];
}

export interface WatchSession {
  id: number;
  client: number;
  endpoint: string;
  /** recorders watch everything from the start and build the reference history */
  recorder: boolean;
  request: WatchRequestParams;
  opened: number;
  closed: number;
  /** how the session ended: 'canceled' by us, or the stream error */
  end: string;
  responses: WatchResponseRecord[];
}

export interface NemesisEvent {
  time: number;
  /** e.g. 'kill', 'pause', 'partition', 'heal', 'compact' */
  kind: string;
  detail: string;
}

export interface Compaction {
  time: number;
  revision: number;
  ok: boolean;
}

export interface History {
  operations: Operation[];
  watches: WatchSession[];
  nemesis: NemesisEvent[];
  compactions: Compaction[];
}

export function emptyHistory(): History {
  return { operations: [], watches: [], nemesis: [], compactions: [] };
}

/** Does a mutating response create a new revision? (A put always does; a delete
 * or txn only when something changed.) Lease revokes depend on attached keys the
 * response does not show, so they answer 'maybe'. */
export function bumpsRevision(input: KvRequest, output: KvResponse): boolean | 'maybe' {
  switch (output.type) {
    case 'put':
      return true;
    case 'delete':
      return output.deleted > 0;
    case 'txn': {
      if (input.type !== 'txn') return false;
      const branch = output.succeeded ? input.success : input.failure;
      if (output.results === null) return branch.some((op) => op.type === 'put') ? true : 'maybe';
      return output.results.some((r) => r.type === 'put' || (r.type === 'delete' && r.deleted > 0));
    }
    case 'leaseRevoke':
      return 'maybe';
    default:
      return false;
  }
}

/** Serializable reads are not linearizable by contract; they are checked against
 * the replayed history instead. */
export function isSerializableRead(op: Operation): boolean {
  return op.input.type === 'range' && op.input.serializable;
}

// --- JSON lines ---------------------------------------------------------------

type Line =
  | { kind: 'op'; op: Operation }
  | { kind: 'watch'; watch: WatchSession }
  | { kind: 'nemesis'; event: NemesisEvent }
  | { kind: 'compaction'; compaction: Compaction };

/** JSON has no Infinity: an unknown return is written as null. */
export function historyToJsonLines(h: History): string {
  const lines: string[] = [];
  for (const op of h.operations) {
    lines.push(JSON.stringify({ kind: 'op', op: { ...op, return: Number.isFinite(op.return) ? op.return : null } }));
  }
  for (const w of h.watches) lines.push(JSON.stringify({ kind: 'watch', watch: w }));
  for (const e of h.nemesis) lines.push(JSON.stringify({ kind: 'nemesis', event: e }));
  for (const c of h.compactions) lines.push(JSON.stringify({ kind: 'compaction', compaction: c }));
  return lines.join('\n') + '\n';
}

export function historyFromJsonLines(text: string): History {
  const h = emptyHistory();
  for (const raw of text.split('\n')) {
    if (raw.trim() === '') continue;
    const line = JSON.parse(raw) as Line;
    switch (line.kind) {
      case 'op': {
        const ret = line.op.return as number | null;
        h.operations.push({ ...line.op, return: ret === null ? Infinity : ret });
        break;
      }
      case 'watch':
        h.watches.push(line.watch);
        break;
      case 'nemesis':
        h.nemesis.push(line.event);
        break;
      case 'compaction':
        h.compactions.push(line.compaction);
        break;
    }
  }
  return h;
}
