import { createHmac, timingSafeEqual } from "node:crypto";
import type { Redis } from "ioredis";

// The webhooks a phone posts to smsgw are signed as the app signs every webhook
// (`PayloadSingingPlugin.kt`): `X-Signature` is the hex HMAC-SHA256 of the body and `X-Timestamp`
// (unix seconds). One signed too long ago, or in the future, or seen before, is refused.

/** How far a signed webhook's `X-Timestamp` may be from now (either way) before it is refused. */
export const signatureWindowSeconds = 300;
const signatureKey = (signature: string) => `smsgw:smsgate:sig:${signature}`;

/** Whether `signature` is the app's signature of the body and the timestamp with `key`. */
export function signedBy(key: string, body: string, timestamp: string, signature: string): boolean {
  if (!/^[0-9a-f]{64}$/.test(signature)) return false;
  const expected = createHmac("sha256", key)
    .update(body + timestamp)
    .digest();
  const given = Buffer.from(signature, "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Whether a timestamp is a unix time within the window of now. */
export function fresh(timestamp: string, nowMs = Date.now()): boolean {
  return /^\d{1,12}$/.test(timestamp) && Math.abs(nowMs / 1000 - Number(timestamp)) <= signatureWindowSeconds;
}

/** Remembers the signatures seen within twice the window, so that a replayed webhook is refused. */
export class ReplayGuard {
  constructor(private readonly redis: Redis) {}

  /** True the first time a signature is seen (within the window); false for a replay. */
  async first(signature: string): Promise<boolean> {
    return (await this.redis.set(signatureKey(signature), "1", "EX", 2 * signatureWindowSeconds, "NX")) === "OK";
  }
}
