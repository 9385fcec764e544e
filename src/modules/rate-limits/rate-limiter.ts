import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { Batcher } from "../../shared/batcher.js";

/** The outcome of counting one request. */
export interface RateDecision {
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  /** Seconds until another request would be allowed (the oldest counted one leaves the window). */
  readonly resetSeconds: number;
}

// A sliding log: the times of the requests allowed in the last window, in a sorted set. Forgets the
// ones older than the window, counts the rest, adds as many of the requests asking (ARGV[4], those
// that arrived together) as there is room for. Redis's own clock, so every instance agrees. One
// round trip, atomic. Returns how many were allowed, the count after them and Redis's time and the
// oldest time (ms).
const hitScript = `
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local windowMs = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', nowMs - windowMs)
local count = redis.call('ZCARD', KEYS[1])
local allowed = math.max(0, math.min(tonumber(ARGV[4]), tonumber(ARGV[2]) - count))
if allowed > 0 then
  local members = {}
  for i = 1, allowed do
    members[#members + 1] = nowMs
    members[#members + 1] = ARGV[3] .. ':' .. i
  end
  redis.call('ZADD', KEYS[1], unpack(members))
  count = count + allowed
end
redis.call('PEXPIRE', KEYS[1], windowMs)
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2] or nowMs
return {allowed, count, nowMs, tonumber(oldest)}
`;

/** The script as a command: how many were allowed, the count in the window, Redis's time and the oldest (ms). */
type RateHitCommand = (
  key: string,
  windowMs: number,
  limit: number,
  member: string,
  asking: number,
) => Promise<[number, number, number, number]>;

/**
 * The decisions for `asking` requests counted together, in their order: the first `allowed` of them
 * take the window's room one after another, the rest find it full.
 */
export function decisionsFor(
  asking: number,
  answer: { allowed: number; count: number; nowMs: number; oldestMs: number },
  limit: number,
  windowSeconds: number,
): RateDecision[] {
  const before = answer.count - answer.allowed;
  const resetSeconds = Math.max(1, Math.ceil((answer.oldestMs + windowSeconds * 1000 - answer.nowMs) / 1000));
  return Array.from({ length: asking }, (_, i) => {
    const allowed = i < answer.allowed;
    const counted = allowed ? before + i + 1 : answer.count;
    return { allowed, limit, remaining: Math.max(0, limit - counted), resetSeconds };
  });
}

/** Subjects whose batching is kept before the idle ones are forgotten. */
const maxBatchedSubjects = 10_000;

/** Subjects a per-instance window keeps before it forgets those with no request in the window. */
const maxLocalSubjects = 50_000;

/**
 * The same sliding log in this process's memory: what the limiter falls back to while Redis does not
 * answer. Each instance then counts only its own requests, so a client spread over several instances
 * may get up to that many times its limit until Redis is back.
 */
class LocalWindows {
  private readonly hits = new Map<string, number[]>();

  hit(subject: string, limit: number, windowSeconds: number): RateDecision {
    const now = Date.now();
    const windowMs = windowSeconds * 1000;
    if (this.hits.size >= maxLocalSubjects) {
      for (const [key, times] of this.hits) if ((times.at(-1) ?? 0) <= now - windowMs) this.hits.delete(key);
    }
    const times = (this.hits.get(subject) ?? []).filter((time) => time > now - windowMs);
    const allowed = times.length < limit;
    if (allowed) times.push(now);
    this.hits.set(subject, times);
    const oldest = times[0] ?? now;
    return {
      allowed,
      limit,
      remaining: Math.max(0, limit - times.length),
      resetSeconds: Math.max(1, Math.ceil((oldest + windowMs - now) / 1000)),
    };
  }
}

/** How requests are being counted: across instances in Redis, or by each instance alone. */
export type RateLimitMode = "shared" | "per_instance";

/**
 * Request counters in Redis, shared by every server instance, over a sliding window: no more than
 * `limit` requests are allowed in any window of `windowSeconds`, wherever it starts (a fixed window
 * lets twice the limit through across its edge). While Redis does not answer, each instance counts
 * on its own (logged, and shown by `/up`), so that requests are still served and still limited.
 */
export class RateLimiter {
  private readonly prefix = randomBytes(6).toString("hex");
  private sequence = 0;
  private readonly local = new LocalWindows();
  /** Per subject (with its limit and window): the requests waiting to be counted together. */
  private readonly batchers = new Map<string, Batcher<null, RateDecision>>();
  private fallenBack = false;

  constructor(
    private readonly redis: Redis,
    private readonly windowSeconds: number,
    private readonly logger?: Logger,
  ) {
    // Sent by its hash (EVALSHA; ioredis loads it again should Redis have forgotten it).
    redis.defineCommand("smsgwRateHit", { lua: hitScript, numberOfKeys: 1 });
  }

  /** Whether counts are shared through Redis now, or kept by this instance alone. */
  get mode(): RateLimitMode {
    return this.fallenBack ? "per_instance" : "shared";
  }

  /** Counts one request for `subject` against `limit` per window (the limiter's, unless given). */
  async hit(subject: string, limit: number, windowSeconds = this.windowSeconds): Promise<RateDecision> {
    // Not connected: no wait for a reconnect, the local count answers at once.
    if (this.redis.status !== "ready") return this.fallBack(subject, limit, windowSeconds, undefined);
    try {
      const decision = await this.shared(subject, limit, windowSeconds);
      if (this.fallenBack) {
        this.fallenBack = false;
        this.logger?.info("Redis answers again: rate limits are shared across instances again");
      }
      return decision;
    } catch (error) {
      return this.fallBack(subject, limit, windowSeconds, error);
    }
  }

  private fallBack(subject: string, limit: number, windowSeconds: number, error: unknown): RateDecision {
    if (!this.fallenBack) {
      this.fallenBack = true;
      this.logger?.warn(
        { err: error, redis: this.redis.status },
        "Redis does not answer: rate limits are counted by this instance alone until it is back",
      );
    }
    return this.local.hit(subject, limit, windowSeconds);
  }

  /**
   * Counts in Redis. Requests for the same subject that arrive together (a client's burst) are
   * counted by one script call, and ones arriving while it runs by the next: the same decisions as
   * one call each, in their order, for one round trip.
   */
  private shared(subject: string, limit: number, windowSeconds: number): Promise<RateDecision> {
    const id = `${subject} ${limit} ${windowSeconds}`;
    let batcher = this.batchers.get(id);
    if (batcher === undefined) {
      if (this.batchers.size >= maxBatchedSubjects) this.forgetIdleBatchers();
      batcher = new Batcher<null, RateDecision>((asking) => this.count(subject, limit, windowSeconds, asking.length), {
        maxBatch: 500,
        concurrency: 1,
        // Redis failed the whole call (each request then counts here alone); were it run again for
        // each, a script that ran before its answer was lost would count the requests twice.
        retryAlone: false,
      });
      this.batchers.set(id, batcher);
    }
    return batcher.add(null);
  }

  private forgetIdleBatchers(): void {
    for (const [id, batcher] of this.batchers) {
      const { waiting, running } = batcher.load;
      if (waiting === 0 && running === 0) this.batchers.delete(id);
    }
  }

  private async count(subject: string, limit: number, windowSeconds: number, asking: number): Promise<RateDecision[]> {
    this.sequence += 1;
    const member = `${this.prefix}:${this.sequence}`;
    const hit = (this.redis as unknown as { smsgwRateHit: RateHitCommand }).smsgwRateHit;
    const [allowed, count, nowMs, oldestMs] = await hit.call(
      this.redis,
      `smsgw:rl:${subject}`,
      windowSeconds * 1000,
      limit,
      member,
      asking,
    );
    return decisionsFor(asking, { allowed, count, nowMs, oldestMs }, limit, windowSeconds);
  }
}
