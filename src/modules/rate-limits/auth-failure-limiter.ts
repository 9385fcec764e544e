import type { RateDecision, RateLimiter } from "./rate-limiter.js";

/** Addresses remembered as blocked beyond this many are pruned of the ones whose block ended. */
const maxRemembered = 10_000;

/**
 * Limits failed authentication per client address (unknown, revoked or missing keys), so that keys
 * cannot be tried without end. Failures are counted in Redis across instances; an address over the
 * limit is remembered here until its window frees, so that checking a request costs no round trip
 * and valid keys are not slowed. Each instance learns of a block at the address's next failure there.
 */
export class AuthFailureLimiter {
  private readonly blockedUntilMs = new Map<string, number>();

  constructor(
    private readonly limiter: RateLimiter,
    private readonly limit: number,
    private readonly windowSeconds: number,
  ) {}

  /** Seconds the address must wait before it may authenticate again; undefined when it may now. */
  blockedFor(peer: string): number | undefined {
    const until = this.blockedUntilMs.get(peer);
    if (until === undefined) return undefined;
    const leftMs = until - Date.now();
    if (leftMs > 0) return Math.ceil(leftMs / 1000);
    this.blockedUntilMs.delete(peer);
    return undefined;
  }

  /** Counts a failed authentication from the address; not allowed means it is now blocked. */
  async failed(peer: string): Promise<RateDecision> {
    const decision = await this.limiter.hit(`authfail:${peer}`, this.limit, this.windowSeconds);
    if (decision.allowed) return decision;
    if (this.blockedUntilMs.size >= maxRemembered) {
      const now = Date.now();
      for (const [address, until] of this.blockedUntilMs) if (until <= now) this.blockedUntilMs.delete(address);
    }
    this.blockedUntilMs.set(peer, Date.now() + decision.resetSeconds * 1000);
    return decision;
  }
}
