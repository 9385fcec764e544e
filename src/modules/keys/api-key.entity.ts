import { defineEntity, type InferEntity, p } from "@mikro-orm/core";

/** Who a key belongs to: one gateway device, or a client application of some scope. */
export type KeyScope = "gateway" | "client" | "admin";

/** An API key. Only the SHA-256 digest of the key is stored; `hint` is its last four characters. */
export const ApiKeyEntity = defineEntity({
  name: "ApiKey",
  tableName: "api_keys",
  properties: {
    id: p.integer().primary().autoincrement(),
    scope: p.string().length(16).$type<KeyScope>(),
    name: p.string().length(255),
    digest: p.string().length(64).unique(),
    hint: p.string().length(4),
    gatewayId: p.integer().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    lastUsedAt: p.datetime().nullable(),
    revokedAt: p.datetime().nullable(),
  },
});

export type ApiKey = InferEntity<typeof ApiKeyEntity>;
