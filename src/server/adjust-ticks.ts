// etcd's adjustTicks: a fresh member need not wait a whole election timeout before its
// first campaign. A lone voter campaigns at once; in a cluster, once a peer's stream is
// up, the member advances to two ticks short of its election timeout, so a cluster
// elects a leader soon after a quorum is connected.

/** How long a member in a cluster waits for a peer's stream before leaving its ticks alone. */
const PEER_WAIT_MS = 5000;
const POLL_MS = 50;

export interface TickAdjustment {
  readonly votersAtStart: number;
  /** the election timeout in ticks */
  readonly electionTicks: number;
  advanceTicks(n: number): void;
  /** whether any other member's stream is up */
  peerConnected(): boolean;
  stopped(): boolean;
}

export async function adjustTicks(t: TickAdjustment): Promise<void> {
  if (t.votersAtStart === 1) {
    t.advanceTicks(t.electionTicks - 1);
    return;
  }
  const deadline = Date.now() + PEER_WAIT_MS;
  while (!t.stopped() && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    if (t.peerConnected()) {
      t.advanceTicks(t.electionTicks - 2);
      return;
    }
  }
}
