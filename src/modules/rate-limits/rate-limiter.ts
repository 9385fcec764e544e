import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";

/** The outcome of counting one request. */
export interface RateDecision {
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  /** Seconds until another request would be allowed (the oldest counted one leaves the window). */
  readonly resetSeconds: number;
}

// A sliding log: the times of the requests allowed in the last window, in a sorted set. Forgets the
// ones older than the window, counts the rest, adds this one if there is room. Redis's own clock,
// so every instance agrees. One round trip, atomic. Returns allowed, count and the oldest time (ms).
const hitScript = `
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local windowMs = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', nowMs - windowMs)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], nowMs, ARGV[3])
  count = count + 1
  allowed = 1
end
redis.call('PEXPIRE', KEYS[1], windowMs)
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2] or nowMs
return {allowed, count, nowMs, tonumber(oldest)}
`;

/**
 * Request counters in Redis, shared by every server instance, over a sliding window: no more than
 * `limit` requests are allowed in any window of `windowSeconds`, wherever it starts (a fixed window
 * lets twice the limit through across its edge).
 */
export class RateLimiter {
  private readonly prefix = randomBytes(6).toString("hex");
  private sequence = 0;

  constructor(
    private readonly redis: Redis,
    private readonly windowSeconds: number,
  ) {}

  /** Counts one request for `subject` against `limit` per window (the limiter's, unless given). */
  async hit(subject: string, limit: number, windowSeconds = this.windowSeconds): Promise<RateDecision> {
    this.sequence += 1;
    const member = `${this.prefix}:${this.sequence}`;
    const [allowed, count, nowMs, oldestMs] = (await this.redis.eval(
      hitScript,
      1,
      `smsgw:rl:${subject}`,
      windowSeconds * 1000,
      limit,
      member,
    )) as [number, number, number, number];
    return {
      allowed: allowed === 1,
      limit,
      remaining: Math.max(0, limit - count),
      resetSeconds: Math.max(1, Math.ceil((oldestMs + windowSeconds * 1000 - nowMs) / 1000)),
    };
  }
}
