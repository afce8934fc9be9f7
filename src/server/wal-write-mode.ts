// Whether the WAL's next durable write may block the main thread (the node disk's
// durableWriteMayBlock). Made on the main thread, a write spares the thread pool's round
// trip: one member's puts went 6-84 % faster at one client and 16-45 % at 64, over three
// rounds (bench/server/README.md, session 32). But the loop serves nothing while the disk
// works: with reads beside the puts, always blocking cost the reads ~30 % of their throughput.
// So a write blocks only when the loop has had no client request but writes since the
// write before it (writes wait for the WAL anyway), and only while the disk is quick: a
// sync slower than BLOCKING_WRITE_MAX_MS sends the next writes through the pool until one
// is quick again. Calls that do not come through the gRPC server (the JSON gateway, a
// library's in-process calls) are not counted.

/** The longest a durable write may have taken for the next to block the loop. */
export const BLOCKING_WRITE_MAX_MS = 2;

export class WalWriteMode {
  /** otherRequests() at the last durable write */
  private othersSeen = 0;
  private lastSyncMs = 0;

  /** `otherRequests`: how many client requests other than writes the member has received */
  constructor(private readonly otherRequests: () => number) {}

  /** The WAL's last sync or durable write took `seconds` (its onFsync). */
  synced(seconds: number): void {
    this.lastSyncMs = seconds * 1000;
  }

  /** Asked before each durable write. */
  readonly mayBlock = (): boolean => {
    const others = this.otherRequests();
    const quiet = others === this.othersSeen;
    this.othersSeen = others;
    return quiet && this.lastSyncMs <= BLOCKING_WRITE_MAX_MS;
  };
}
