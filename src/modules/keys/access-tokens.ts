import { createHmac, timingSafeEqual } from "node:crypto";
import { invalid } from "../../shared/errors.js";
import { randomToken } from "../../shared/ids.js";
import type { AccessTokenRepository, NewAccessToken } from "./access-token.repository.js";

// Signed tokens a client key issues for itself, each good for some scopes and a while: JWTs
// (RFC 7519) signed with HMAC-SHA256, as SMSGate's server issues them (`internal/sms-gateway/jwt`):
// an access token (`scopes`) and a refresh token that is good once, for a new pair of the same
// scopes. Each token's id (`jti`) is stored, so that it can be revoked; a token of a revoked key
// stops working with it.

/** One token, and when it stops working. */
export interface IssuedToken {
  id: string;
  token: string;
  expiresAt: Date;
}

/** What an issue or a refresh answers. */
export interface TokenPair {
  access: IssuedToken;
  refresh: IssuedToken;
}

/** What a valid token says. */
export interface TokenClaims {
  id: string;
  keyId: number;
  scopes: string[];
}

interface Payload {
  jti: string;
  iss: string;
  sub: string;
  iat: number;
  exp: number;
  scopes: string[];
  /** A refresh token's: the scopes of the access tokens it gives. */
  original_scopes?: string[];
}

const base64url = (value: Buffer | string) => Buffer.from(value).toString("base64url");
const header = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));

/** The scope a refresh token carries (SMSGate's `tokens:refresh`: the only thing it is good for). */
const refreshScope = "tokens:refresh";

/** Issues, checks, refreshes and revokes a key's signed tokens. */
export class AccessTokens {
  constructor(
    private readonly repository: AccessTokenRepository,
    private readonly secret: Buffer,
    private readonly options: { accessTtlSeconds: number; refreshTtlSeconds: number; issuer: string },
  ) {}

  private sign(payload: Payload): string {
    const body = `${header}.${base64url(JSON.stringify(payload))}`;
    return `${body}.${createHmac("sha256", this.secret).update(body).digest("base64url")}`;
  }

  /** The payload of a token signed by this server and not expired; undefined otherwise. */
  private read(token: string): Payload | undefined {
    const parts = token.split(".");
    if (parts.length !== 3 || parts[0] !== header) return undefined;
    const [, body = "", signature = ""] = parts;
    const expected = createHmac("sha256", this.secret).update(`${header}.${body}`).digest();
    const given = Buffer.from(signature, "base64url");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    let payload: Payload;
    try {
      payload = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as Payload;
    } catch {
      return undefined;
    }
    const now = Date.now() / 1000;
    if (payload.iss !== this.options.issuer || typeof payload.exp !== "number" || payload.exp <= now) return undefined;
    if (typeof payload.iat !== "number" || !Array.isArray(payload.scopes) || !/^\d+$/.test(payload.sub ?? "")) {
      return undefined;
    }
    return payload;
  }

  private pair(keyId: number, scopes: string[], accessTtlSeconds: number): { pair: TokenPair; rows: NewAccessToken[] } {
    const now = Math.floor(Date.now() / 1000);
    const accessExp = now + Math.min(accessTtlSeconds, this.options.accessTtlSeconds);
    const refreshExp = now + this.options.refreshTtlSeconds;
    const access = {
      jti: randomToken(21),
      iss: this.options.issuer,
      sub: String(keyId),
      iat: now,
      exp: accessExp,
      scopes,
    };
    const refresh = {
      jti: randomToken(21),
      iss: this.options.issuer,
      sub: String(keyId),
      iat: now,
      exp: refreshExp,
      scopes: [refreshScope],
      original_scopes: scopes,
    };
    return {
      pair: {
        access: { id: access.jti, token: this.sign(access), expiresAt: new Date(accessExp * 1000) },
        refresh: { id: refresh.jti, token: this.sign(refresh), expiresAt: new Date(refreshExp * 1000) },
      },
      rows: [
        { id: access.jti, keyId, use: "access", parentId: null, expiresAt: new Date(accessExp * 1000) },
        { id: refresh.jti, keyId, use: "refresh", parentId: access.jti, expiresAt: new Date(refreshExp * 1000) },
      ],
    };
  }

  /**
   * A new pair for the key: an access token of these scopes for `ttlSeconds` (0: the longest, which
   * is also the most it may be), and its refresh token.
   */
  async issue(keyId: number, scopes: string[], ttlSeconds: number): Promise<TokenPair> {
    if (scopes.length === 0) throw invalid("scopes must name at least one scope");
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 0) throw invalid("ttl must be a whole number of seconds");
    const { pair, rows } = this.pair(keyId, scopes, ttlSeconds === 0 ? this.options.accessTtlSeconds : ttlSeconds);
    // The key's long-expired tokens go as it issues new ones: the table holds what can still be used.
    await this.repository.forgetExpired(keyId);
    await this.repository.insert(rows);
    return pair;
  }

  /** What a live access token says; undefined for any other token. */
  async verify(token: string): Promise<TokenClaims | undefined> {
    const payload = this.read(token);
    if (payload === undefined || payload.original_scopes !== undefined) return undefined;
    const keyId = Number(payload.sub);
    if (!(await this.repository.accessUsable(payload.jti, keyId))) return undefined;
    return { id: payload.jti, keyId, scopes: payload.scopes };
  }

  /**
   * A new pair for a live refresh token, which is used up; "replayed" when it was used before (its
   * successor stays good: only it is refused), undefined for any other token.
   */
  async refresh(token: string): Promise<TokenPair | "replayed" | undefined> {
    const payload = this.read(token);
    if (payload?.original_scopes === undefined || payload.original_scopes.length === 0) return undefined;
    const keyId = Number(payload.sub);
    const { pair, rows } = this.pair(keyId, payload.original_scopes, this.options.accessTtlSeconds);
    const rotated = await this.repository.rotate(payload.jti, keyId, rows);
    if (rotated === "unknown") return undefined;
    return rotated === "replayed" ? "replayed" : pair;
  }

  /** Revokes a key's access token (and its refresh token); false when the key has no such live token. */
  revoke(keyId: number, id: string): Promise<boolean> {
    return this.repository.revoke(id, keyId);
  }
}
