import type { EntityManager } from "@mikro-orm/postgresql";
import { Sql } from "../../db/sql.js";

/** A token to store: its id, whose it is, its use, its access token (a refresh token's) and expiry. */
export interface NewAccessToken {
  id: string;
  keyId: number;
  use: "access" | "refresh";
  parentId: string | null;
  expiresAt: Date;
}

const insertSql = `insert into access_tokens (id, key_id, token_use, parent_id, expires_at)
  select * from unnest(?::char(21)[], ?::int[], ?::varchar(8)[], ?::char(21)[], ?::timestamptz[])`;

/** `insertSql`'s parameters: each column's values as one array. */
const insertParams = (tokens: NewAccessToken[]) => [
  tokens.map((token) => token.id),
  tokens.map((token) => token.keyId),
  tokens.map((token) => token.use),
  tokens.map((token) => token.parentId),
  tokens.map((token) => token.expiresAt),
];

/** Every statement on `access_tokens`: the only code that writes it. */
export class AccessTokenRepository {
  private readonly sql: Sql;

  constructor(em: EntityManager) {
    this.sql = new Sql(em);
  }

  /** Stores tokens issued together (an access token and its refresh token). */
  async insert(tokens: NewAccessToken[]): Promise<void> {
    await this.sql.all(insertSql, insertParams(tokens));
  }

  /**
   * Whether an access token of this key may be used: stored, not revoked, not expired, and its key
   * not revoked either.
   */
  async accessUsable(id: string, keyId: number): Promise<boolean> {
    const row = await this.sql.one<{ ok: boolean }>(
      `select true as ok from access_tokens t join api_keys k on k.id = t.key_id
        where t.id = ? and t.key_id = ? and t.token_use = 'access' and t.revoked_at is null
          and t.expires_at > now() and k.revoked_at is null`,
      [id, keyId],
    );
    return row !== undefined;
  }

  /**
   * Revokes a key's access token and its refresh token; false when the key has no such live token.
   */
  async revoke(id: string, keyId: number): Promise<boolean> {
    const rows = await this.sql.all<{ id: string }>(
      `update access_tokens set revoked_at = now()
        where (id = ? or parent_id = ?) and key_id = ? and revoked_at is null returning id`,
      [id, id, keyId],
    );
    return rows.length > 0;
  }

  /**
   * Uses a refresh token once: revokes it and stores its successors, in one transaction. "replayed"
   * when it was used (or revoked) before, "unknown" when it is not a live refresh token of this key.
   */
  async rotate(id: string, keyId: number, next: NewAccessToken[]): Promise<"rotated" | "replayed" | "unknown"> {
    return this.sql.transaction(async (tx) => {
      const current = await this.sql.one<{ revoked: boolean; expired: boolean }>(
        `select revoked_at is not null as revoked, expires_at <= now() as expired from access_tokens
          where id = ? and key_id = ? and token_use = 'refresh' for update`,
        [id, keyId],
        tx,
      );
      if (current === undefined || current.expired) return "unknown";
      if (current.revoked) return "replayed";
      await this.sql.all("update access_tokens set revoked_at = now() where id = ?", [id], tx);
      await this.sql.all(insertSql, insertParams(next), tx);
      return "rotated";
    });
  }

  /** Forgets a key's tokens that expired a day ago or more (nothing can use or revoke them); how many. */
  async forgetExpired(keyId: number): Promise<number> {
    const rows = await this.sql.all(
      "delete from access_tokens where key_id = ? and expires_at < now() - interval '1 day' returning id",
      [keyId],
    );
    return rows.length;
  }
}
