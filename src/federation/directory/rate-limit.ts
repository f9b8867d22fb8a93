/**
 * A token bucket per peer: a peer may send `burst` messages at once and `ratePerSecond` sustained; beyond
 * that its messages are refused (rate_limited) without being read further. Against a digest storm from one
 * peer: a digest costs the responder a scan of its replica.
 */
export class PeerRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly burst: number,
    private readonly ratePerSecond: number,
    private readonly now: () => number = Date.now,
    /** Peers remembered at most (the oldest is forgotten first), so that many ids cannot grow the map. */
    private readonly maxPeers = 4096,
  ) {}

  /** Takes one token for `peer`; false when its bucket is empty. */
  take(peer: string): boolean {
    const now = this.now();
    const bucket = this.buckets.get(peer) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.ratePerSecond);
    bucket.at = now;
    this.buckets.delete(peer); // re-insert: Map order is then least recently seen first
    this.buckets.set(peer, bucket);
    if (this.buckets.size > this.maxPeers) this.buckets.delete(this.buckets.keys().next().value!);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}
