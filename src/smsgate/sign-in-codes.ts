import { randomInt } from "node:crypto";
import type { Redis } from "ioredis";

// The app's "Sign in by code" (`GET /user/code`, then `POST /device` with `Authorization: Code …`):
// a six-digit code that lets one more phone join an account, once, for a few minutes. Kept in Redis:
// a code lost with Redis is only asked for again.

/** How long a sign-in code lets a phone join its account. */
export const codeTtlSeconds = 300;
const codeKey = (code: string) => `smsgw:smsgate:code:${code}`;

/** The account a sign-in code lets a phone join. */
export interface CodeAccount {
  keyId: number;
  login: string;
}

/** Sign-in codes of SMSGate accounts, each good for one phone. */
export class SignInCodes {
  constructor(private readonly redis: Redis) {}

  /** A fresh code for the account, and until when it is good. */
  async issue(account: CodeAccount): Promise<{ code: string; validUntil: Date }> {
    for (;;) {
      const code = String(randomInt(0, 1_000_000)).padStart(6, "0");
      const set = await this.redis.set(codeKey(code), `${account.keyId} ${account.login}`, "EX", codeTtlSeconds, "NX");
      if (set === "OK") return { code, validUntil: new Date(Date.now() + codeTtlSeconds * 1000) };
    }
  }

  /** The account a code names, taking the code (it is good once); undefined for any other value. */
  async redeem(code: string): Promise<CodeAccount | undefined> {
    if (!/^\d{6}$/.test(code)) return undefined;
    const held = await this.redis.getdel(codeKey(code));
    if (held === null) return undefined;
    const [keyId, login] = held.split(" ");
    return { keyId: Number(keyId), login: login ?? "" };
  }
}
