// The gateway's share of --max-concurrent-streams. etcd's grpc-gateway reaches the
// member's gRPC server over one client connection, so every gateway request is a stream
// on that connection and at most --max-concurrent-streams of them run at once: a request
// past the limit waits for one to end (etcd's TestV3Curl_MaxStreams_* rely on it).

export class StreamSlots {
  private inUse = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`stream limit must be a positive integer, got ${limit}`);
  }

  /** Resolves with the slot's release once one is free; call release exactly once. */
  acquire(): Promise<() => void> {
    return new Promise((resolve) => {
      const grant = (): void => {
        this.inUse++;
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          this.inUse--;
          this.waiting.shift()?.();
        });
      };
      if (this.inUse < this.limit) grant();
      else this.waiting.push(grant);
    });
  }
}
