import type { EntityManager } from "@mikro-orm/postgresql";
import { Sql } from "../../db/sql.js";
import { ApiKeyEntity, type KeyScope, type StoredApiKey } from "./api-key.entity.js";

/** A key found by its digest, with its gateway's device id. */
export interface KeyRow {
  id: number;
  scope: KeyScope;
  name: string;
  digest: string;
  gateway_id: number | null;
  device_id: string | null;
  /** Whether `last_used_at` is older than the resolution it is kept to. */
  stale: boolean;
}

/** Every statement on `api_keys`: the only code that writes it. */
export class KeyRepository {
  private readonly sql: Sql;

  constructor(private readonly em: EntityManager) {
    this.sql = new Sql(em);
  }

  /** Stores a key's record (in `em`'s transaction, the registration of its gateway, when given). */
  async insert(
    key: { scope: KeyScope; name: string; digest: string; hint: string; gatewayId: number | null; login?: string },
    em: EntityManager = this.em.fork(),
  ): Promise<StoredApiKey> {
    const entity = em.create(ApiKeyEntity, {
      scope: key.scope,
      name: key.name,
      digest: key.digest,
      hint: key.hint,
      gateway: key.gatewayId,
      login: key.login ?? null,
    });
    await em.flush();
    return entity;
  }

  /** Stores an SMSGate account (a client key with a login); undefined when the login is taken. */
  async insertAccount(
    account: { name: string; login: string; digest: string; hint: string },
    em?: EntityManager,
  ): Promise<StoredApiKey | undefined> {
    // The login is checked first, so that a taken one does not abort the caller's transaction; in that
    // transaction, on its connection: asking for another connection while holding one would wait
    // forever once every connection of the pool is held by a registration doing the same.
    const taken = await this.sql.one(
      "select 1 from api_keys where login = ?",
      [account.login],
      em?.getTransactionContext(),
    );
    if (taken !== undefined) return undefined;
    return this.insert({ scope: "client", gatewayId: null, ...account }, em);
  }

  /** A live client or admin key by its id, with its login (an SMSGate account's). */
  clientById(
    id: number,
  ): Promise<{ id: number; scope: "client" | "admin"; name: string; login: string | null } | undefined> {
    return this.sql.one(
      "select id, scope, name, login from api_keys where id = ? and revoked_at is null and scope in ('client', 'admin')",
      [id],
    );
  }

  /** Whether a key (revoked or not) has this digest. */
  async digestKnown(digest: string): Promise<boolean> {
    return (await this.sql.one("select 1 from api_keys where digest = ?", [digest])) !== undefined;
  }

  /** Whether the gateway has a key that is not revoked. */
  async gatewayKeyLive(gatewayId: number): Promise<boolean> {
    const row = await this.sql.one("select 1 from api_keys where gateway_id = ? and revoked_at is null limit 1", [
      gatewayId,
    ]);
    return row !== undefined;
  }

  /** Replaces an account's password digest. */
  async setDigest(id: number, digest: string): Promise<void> {
    await this.sql.all("update api_keys set digest = ? where id = ?", [digest, id]);
  }

  /** A key's SMSGate webhook signing key (encrypted), or null when it has none yet. */
  async signingKey(id: number): Promise<string | null> {
    return (
      (await this.sql.one<{ key: string | null }>("select smsgate_signing_key as key from api_keys where id = ?", [id]))
        ?.key ?? null
    );
  }

  /** Sets a key's SMSGate webhook signing key (encrypted); with `onlyIfUnset`, keeps one already set. */
  async setSigningKey(id: number, sealed: string, onlyIfUnset: boolean): Promise<string | null> {
    const row = await this.sql.one<{ key: string | null }>(
      `update api_keys set smsgate_signing_key = case when ? and smsgate_signing_key is not null
              then smsgate_signing_key else ? end
        where id = ? returning smsgate_signing_key as key`,
      [onlyIfUnset, sealed, id],
    );
    return row?.key ?? null;
  }

  /** The unrevoked account with this login. */
  byLogin(login: string): Promise<{ id: number; name: string; digest: string } | undefined> {
    return this.sql.one("select id, name, digest from api_keys where login = ? and revoked_at is null", [login]);
  }

  /** Of `keyIds`, those that exist and are not revoked. */
  async live(keyIds: readonly number[]): Promise<number[]> {
    const rows = await this.sql.all<{ id: number }>(
      "select id from api_keys where id = any(?::int[]) and revoked_at is null",
      [keyIds],
    );
    return rows.map((row) => row.id);
  }

  /** The unrevoked key with this digest; `stale` when not used for `resolutionSeconds`. */
  byDigest(digest: string, resolutionSeconds: number): Promise<KeyRow | undefined> {
    return this.sql.one(
      `select k.id, k.scope, k.name, k.digest, k.gateway_id, g.device_id,
              coalesce(k.last_used_at < now() - make_interval(secs => ?), true) as stale
         from api_keys k left join gateways g on g.id = k.gateway_id
        where k.digest = ? and k.revoked_at is null`,
      [resolutionSeconds, digest],
    );
  }

  async markUsed(id: number): Promise<void> {
    await this.sql.all("update api_keys set last_used_at = now() where id = ?", [id]);
  }

  /** Every key, newest first. */
  list(): Promise<StoredApiKey[]> {
    return this.em.fork().find(ApiKeyEntity, {}, { orderBy: { id: "desc" } });
  }

  /** Revokes a key (a revoked one stays as it was); null when it does not exist. */
  async revoke(id: number): Promise<StoredApiKey | null> {
    const em = this.em.fork();
    const key = await em.findOne(ApiKeyEntity, { id });
    if (key === null) return null;
    key.revokedAt ??= new Date();
    await em.flush();
    return key;
  }

  async countActiveAdmins(): Promise<number> {
    return this.em.fork().count(ApiKeyEntity, { scope: "admin", revokedAt: null });
  }
}
