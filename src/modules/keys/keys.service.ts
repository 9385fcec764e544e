import { createHash, scrypt, timingSafeEqual } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";
import { DomainError, invalid } from "../../shared/errors.js";
import { randomToken } from "../../shared/ids.js";
import type { SecretBox } from "../../shared/secret-box.js";
import type { KeyScope } from "./api-key.entity.js";
import type { KeyRepository } from "./key.repository.js";

/** The caller a key identifies. */
export type Principal =
  | { readonly kind: "gateway"; readonly keyId: number; readonly gatewayId: number; readonly deviceId: string }
  | { readonly kind: "client"; readonly keyId: number; readonly scope: "client" | "admin"; readonly name: string };

/** A key as listed: everything but the key itself, which is never kept. */
export interface KeyRecord {
  readonly id: number;
  readonly scope: KeyScope;
  readonly name: string;
  readonly hint: string;
  readonly gatewayId: number | null;
  /** An SMSGate account's login; null for every other key. */
  readonly login: string | null;
  readonly createdAt: Date;
  readonly lastUsedAt: Date | null;
  readonly revokedAt: Date | null;
}

/** smsgw's keys, and the original system's gateway keys (`gw_live_` and 64 hex characters), brought along by import. */
const keyPattern = /^(gw|api)_live_[0-9a-z]{40}$|^gw_live_[0-9a-f]{64}$/;
const digestPattern = /^[0-9a-f]{64}$/;
const registrationPattern = /^reg_live_[0-9a-z]{40}$/;
/** An SMSGate account's login and password, as the app shows them (6 and 14 characters). */
const loginPattern = /^[0-9A-Z]{6}$/;
/** An account's password: the one drawn at sign-up, or one its user chose (at least 14 characters, as SMSGate asks). */
const minPasswordLength = 14;
const maxPasswordLength = 128;
/** `last_used_at` is written at most this often per key, so authentication stays a read. */
const lastUsedResolutionSeconds = 60;
/**
 * How long a checked key is remembered, so that most calls need no database read. Revocation drops
 * it at once on every instance (through the device control channel); this bounds the rest.
 */
const rememberMs = 10_000;
const maxRemembered = 10_000;

/**
 * The digest an account's password is kept as: scrypt, salted with the account's login, since a
 * password a person chose may be guessable where a drawn key is not.
 */
function passwordDigest(login: string, password: string): Promise<string> {
  // On the thread pool: a check takes about 50 ms of CPU, which must not stop the event loop.
  return new Promise((resolve, reject) =>
    scrypt(password, `smsgw account ${login}`, 32, (error, key) =>
      error ? reject(error) : resolve(key.toString("hex")),
    ),
  );
}

function digestOf(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

const prefixes: Record<KeyScope, string> = { gateway: "gw", client: "api", admin: "api", registration: "reg" };

function newKey(scope: KeyScope): string {
  return `${prefixes[scope]}_live_${randomToken(40)}`;
}

/** Issues, checks, lists and revokes API keys. */
export class KeysService {
  private readonly revokeListeners: ((keyId: number) => void | Promise<void>)[] = [];
  private readonly remembered = new Map<string, { principal: Principal; untilMs: number }>();
  /** Lookups under way, by digest. */
  private readonly lookingUp = new Map<string, Promise<Principal | undefined>>();
  /** Counts revocations heard, so that a lookup begun before one is not remembered. */
  private forgotten = 0;

  constructor(private readonly repository: KeyRepository) {}

  /** Hears of every revocation once it is recorded (every instance must cut the key's connections). */
  onRevoked(listener: (keyId: number) => void | Promise<void>): void {
    this.revokeListeners.push(listener);
  }

  /** Of `keyIds`, those revoked (or deleted). */
  async revokedAmong(keyIds: number[]): Promise<number[]> {
    if (keyIds.length === 0) return [];
    const live = new Set(await this.repository.live(keyIds));
    return keyIds.filter((id) => !live.has(id));
  }

  /**
   * Creates a key and returns it with its record: the only time the key itself exists outside the
   * caller. Pass `em` to create it inside the caller's transaction.
   */
  async create(
    input: { scope: KeyScope; name: string; gatewayId?: number },
    em?: EntityManager,
  ): Promise<{ key: string; record: KeyRecord }> {
    if ((input.scope === "gateway") !== (input.gatewayId !== undefined)) {
      throw new Error("a gateway key needs a gateway, and only a gateway key may have one");
    }
    const key = newKey(input.scope);
    const entity = await this.repository.insert(
      {
        scope: input.scope,
        name: input.name,
        digest: digestOf(key),
        hint: key.slice(-4),
        gatewayId: input.gatewayId ?? null,
      },
      em,
    );
    return { key, record: toRecord(entity) };
  }

  /**
   * Opens an SMSGate account: a client key whose login and password (the secret, stored as its
   * digest) are what the app shows its user and what SMSGate's API clients sign in with.
   */
  async createAccount(
    name: string,
    em?: EntityManager,
  ): Promise<{ login: string; password: string; record: KeyRecord }> {
    for (;;) {
      const login = randomToken(6).toUpperCase();
      const password = randomToken(14);
      const entity = await this.repository.insertAccount(
        {
          name,
          login,
          digest: await passwordDigest(login, password),
          // Its login names it in lists: no part of the password is shown.
          hint: "",
        },
        em,
      );
      // Another account has this login (one in about two billion): another is drawn.
      if (entity !== undefined) return { login, password, record: toRecord(entity) };
    }
  }

  /** The account a login and password identify, when both are right and it is not revoked. */
  async account(login: string, password: string): Promise<{ keyId: number; login: string; name: string } | undefined> {
    if (!loginPattern.test(login) || password.length < minPasswordLength || password.length > maxPasswordLength) {
      return undefined;
    }
    const row = await this.repository.byLogin(login);
    if (row === undefined) return undefined;
    const digest = await passwordDigest(login, password);
    if (row === undefined || !timingSafeEqual(Buffer.from(row.digest), Buffer.from(digest))) return undefined;
    return { keyId: row.id, login, name: row.name };
  }

  /**
   * Changes an account's password, when `current` is right (false otherwise). The new one has at
   * least 14 characters. The old one stops working here at once (on other instances, within
   * `rememberMs`).
   */
  async changePassword(login: string, current: string, next: string): Promise<boolean> {
    if (next.length < minPasswordLength || next.length > maxPasswordLength) {
      throw invalid(`the new password must have ${minPasswordLength} to ${maxPasswordLength} characters`);
    }
    const account = await this.account(login, current);
    if (account === undefined) return false;
    await this.repository.setDigest(account.keyId, await passwordDigest(login, next));
    this.forget(account.keyId);
    return true;
  }

  /**
   * The client principal of an account's login and password (SMSGate's `Authorization: Basic`), or
   * undefined. A password costs a scrypt (about 50 ms of CPU): a right one is remembered like a key
   * (for `rememberMs`, forgotten at once when its key is revoked or its password changed), and calls
   * with the same credentials at the same moment share one check.
   */
  async signIn(login: string, password: string): Promise<Principal | undefined> {
    if (!loginPattern.test(login) || password.length < minPasswordLength || password.length > maxPasswordLength) {
      return undefined;
    }
    const digest = `basic:${digestOf(`${login}\u0000${password}`)}`;
    const known = this.remembered.get(digest);
    if (known !== undefined && known.untilMs > Date.now()) return known.principal;
    let pending = this.lookingUp.get(digest);
    if (pending === undefined) {
      const forgotten = this.forgotten;
      pending = (async () => {
        const account = await this.account(login, password);
        if (account === undefined) {
          this.remembered.delete(digest);
          return undefined;
        }
        const principal: Principal = { kind: "client", keyId: account.keyId, scope: "client", name: account.name };
        if (forgotten === this.forgotten) {
          if (this.remembered.size >= maxRemembered) this.remembered.clear();
          this.remembered.set(digest, { principal, untilMs: Date.now() + rememberMs });
        }
        return principal;
      })().finally(() => this.lookingUp.delete(digest));
      this.lookingUp.set(digest, pending);
    }
    return pending;
  }

  /**
   * The key a client's webhooks of SMSGate's API are signed with (its settings' `webhooks.signing_key`):
   * drawn at first need and kept encrypted with `box`.
   */
  async smsGateSigningKey(keyId: number, box: Pick<SecretBox, "seal" | "open">): Promise<string> {
    const sealed = await this.repository.signingKey(keyId);
    if (sealed !== null) return box.open(sealed);
    // Two first needs at once keep the same key: the second finds the first's.
    const kept = await this.repository.setSigningKey(keyId, box.seal(randomToken(32)), true);
    if (kept === null) throw new DomainError("not_found", "No such key");
    return box.open(kept);
  }

  /** Sets that signing key (1 to 256 characters). */
  async setSmsGateSigningKey(keyId: number, key: string, box: Pick<SecretBox, "seal">): Promise<void> {
    if (key.length === 0 || key.length > 256) throw invalid("webhooks.signing_key must be 1 to 256 characters");
    await this.repository.setSigningKey(keyId, box.seal(key), false);
  }

  /**
   * The live client or admin key with this id, as its principal, and its login when it is an SMSGate
   * account (what a signed token of it acts as).
   */
  async clientPrincipal(keyId: number): Promise<{ principal: Principal; login: string | null } | undefined> {
    const row = await this.repository.clientById(keyId);
    if (row === undefined) return undefined;
    return { principal: { kind: "client", keyId: row.id, scope: row.scope, name: row.name }, login: row.login };
  }

  /** Whether a gateway still has a key that works (one whose every key was revoked is shut out). */
  gatewayKeyLive(gatewayId: number): Promise<boolean> {
    return this.repository.gatewayKeyLive(gatewayId);
  }

  /** The id of the live registration token `presented`, or undefined. */
  async registration(presented: string): Promise<number | undefined> {
    if (!registrationPattern.test(presented)) return undefined;
    const digest = digestOf(presented);
    const row = await this.repository.byDigest(digest, lastUsedResolutionSeconds);
    if (row === undefined || row.scope !== "registration") return undefined;
    if (!timingSafeEqual(Buffer.from(row.digest), Buffer.from(digest))) return undefined;
    if (row.stale) await this.repository.markUsed(row.id);
    return row.id;
  }

  /**
   * Brings along a gateway key of the original system, known by its SHA-256 digest only: the phone
   * that holds the key authenticates unchanged. Undefined when that digest is already a key here.
   */
  async importGatewayKey(
    input: { gatewayId: number; name: string; sha256: string },
    em?: EntityManager,
  ): Promise<KeyRecord | undefined> {
    const digest = input.sha256.toLowerCase();
    if (!digestPattern.test(digest)) throw invalid("sha256 must be 64 hexadecimal characters");
    if (await this.repository.digestKnown(digest)) return undefined;
    const entity = await this.repository.insert(
      { scope: "gateway", name: input.name, digest, hint: "", gatewayId: input.gatewayId },
      em,
    );
    return toRecord(entity);
  }

  /** Forgets a remembered key (it was just revoked, here or on another instance). */
  forget(keyId: number): void {
    for (const [digest, entry] of this.remembered) if (entry.principal.keyId === keyId) this.remembered.delete(digest);
    // A lookup that began before the revocation may have read the key as valid: it is not remembered.
    this.forgotten += 1;
  }

  /** The principal a presented key identifies, or undefined when it is unknown or revoked. */
  async authenticate(presented: string): Promise<Principal | undefined> {
    if (!keyPattern.test(presented)) return undefined;
    const digest = digestOf(presented);
    const known = this.remembered.get(digest);
    if (known !== undefined && known.untilMs > Date.now()) return known.principal;
    // Calls with the same key at the same moment (a client's burst, or its first calls) share one read.
    let pending = this.lookingUp.get(digest);
    if (pending === undefined) {
      pending = this.lookUpAndRemember(digest).finally(() => this.lookingUp.delete(digest));
      this.lookingUp.set(digest, pending);
    }
    return pending;
  }

  private async lookUpAndRemember(digest: string): Promise<Principal | undefined> {
    const forgotten = this.forgotten;
    const principal = await this.lookUp(digest);
    if (principal === undefined) {
      this.remembered.delete(digest);
      return undefined;
    }
    if (forgotten !== this.forgotten) return principal;
    if (this.remembered.size >= maxRemembered) this.remembered.clear();
    this.remembered.set(digest, { principal, untilMs: Date.now() + rememberMs });
    return principal;
  }

  private async lookUp(digest: string): Promise<Principal | undefined> {
    const row = await this.repository.byDigest(digest, lastUsedResolutionSeconds);
    // The index found the row by digest; comparing again in constant time keeps the check itself
    // from leaking anything should the lookup ever change.
    if (row === undefined || !timingSafeEqual(Buffer.from(row.digest), Buffer.from(digest))) return undefined;
    if (row.stale) {
      await this.repository.markUsed(row.id);
    }
    if (row.scope === "gateway") {
      if (row.gateway_id === null || row.device_id === null) return undefined;
      return { kind: "gateway", keyId: row.id, gatewayId: row.gateway_id, deviceId: row.device_id };
    }
    // A registration token registers phones and does nothing else.
    if (row.scope === "registration") return undefined;
    return { kind: "client", keyId: row.id, scope: row.scope, name: row.name };
  }

  /** Every key, newest first. */
  async list(): Promise<KeyRecord[]> {
    return (await this.repository.list()).map(toRecord);
  }

  /** Revokes a key at once; revoking a revoked key changes nothing. */
  async revoke(id: number): Promise<KeyRecord> {
    const key = await this.repository.revoke(id);
    if (key === null) throw new DomainError("not_found", `No API key with id ${id}`);
    this.forget(id);
    for (const listener of this.revokeListeners) await listener(id);
    return toRecord(key);
  }

  /** Whether any unrevoked admin key exists. */
  async hasActiveAdminKey(): Promise<boolean> {
    return (await this.repository.countActiveAdmins()) > 0;
  }
}

function toRecord(key: {
  id: number;
  scope: KeyScope;
  name: string;
  hint: string;
  gateway?: { id: number } | null;
  login?: string | null;
  createdAt: Date;
  lastUsedAt?: Date | null;
  revokedAt?: Date | null;
}): KeyRecord {
  return {
    id: key.id,
    scope: key.scope,
    name: key.name,
    hint: key.hint,
    gatewayId: key.gateway?.id ?? null,
    login: key.login ?? null,
    createdAt: key.createdAt,
    lastUsedAt: key.lastUsedAt ?? null,
    revokedAt: key.revokedAt ?? null,
  };
}
