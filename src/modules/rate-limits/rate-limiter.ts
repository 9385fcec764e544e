import type { Redis } from "ioredis";

/** The outcome of counting one request. */
export interface RateDecision {
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  /** Seconds until the window resets. */
  readonly resetSeconds: number;
}

// Counts a hit in a fixed window that opens with the first hit; returns the count and the window's
// remaining milliseconds. One round trip, atomic.
const hitScript = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
`;

/** Fixed-window request counters in Redis, shared by every server instance. */
export class RateLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly windowSeconds: number,
  ) {}

  /** Counts one request for `subject` against `limit` per window. */
  async hit(subject: string, limit: number): Promise<RateDecision> {
    const result = (await this.redis.eval(hitScript, 1, `smsgw:rl:${subject}`, this.windowSeconds * 1000)) as [
      number,
      number,
    ];
    const [count, ttlMs] = result;
    return {
      allowed: count <= limit,
      limit,
      remaining: Math.max(0, limit - count),
      resetSeconds: Math.max(1, Math.ceil(ttlMs / 1000)),
    };
  }
}
