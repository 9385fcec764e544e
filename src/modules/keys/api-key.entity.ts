import { defineEntity, type InferEntity, p } from "@mikro-orm/core";
import { foreignKey } from "../../db/foreign-key.js";
import { GatewayEntity } from "../gateways/index.js";

/**
 * Who a key belongs to: one gateway device, a client application of some scope, or whoever may
 * register phones running the SMSGate app (the app's "private token").
 */
export type KeyScope = "gateway" | "client" | "admin" | "registration";

/**
 * An API key. Only the SHA-256 digest of the key is stored; `hint` is its last four characters.
 * Owned by the keys module.
 */
export const ApiKeyEntity = defineEntity({
  name: "ApiKey",
  tableName: "api_keys",
  properties: {
    id: p.integer().primary().autoincrement(),
    scope: p.enum(["gateway", "client", "admin", "registration"] satisfies KeyScope[]).columnType("varchar(16)"),
    name: p.string().length(255),
    digest: p.string().columnType("char(64)").unique("api_keys_digest_key"),
    hint: p.string().length(4),
    gateway: foreignKey(GatewayEntity, "api_keys", "gateway_id", "cascade")
      .nullable()
      .index("api_keys_gateway_id_index"),
    createdAt: p
      .datetime()
      .defaultRaw("now()")
      .onCreate(() => new Date()),
    lastUsedAt: p.datetime().nullable(),
    revokedAt: p.datetime().nullable(),
    /**
     * A client key that is an SMSGate account: its login (Basic `login:password`, where the password
     * is the secret whose digest is `digest`); null for every other key.
     */
    login: p.string().length(16).nullable().unique("api_keys_login_key"),
    /** An SMSGate account's webhook signing key (its settings' `webhooks.signing_key`), encrypted. */
    smsgateSigningKey: p.text().nullable(),
  },
  checks: [{ name: "api_keys_check", expression: "(scope = 'gateway') = (gateway_id is not null)" }],
});

export type StoredApiKey = InferEntity<typeof ApiKeyEntity>;
