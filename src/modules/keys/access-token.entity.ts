import { defineEntity, p } from "@mikro-orm/core";
import { foreignKey } from "../../db/foreign-key.js";
import { ApiKeyEntity } from "./api-key.entity.js";

/**
 * A signed access or refresh token (a JWT) a client key issued for itself: its id (the JWT's `jti`),
 * whose it is, when it expires and whether it was revoked. The token itself is not stored (it is
 * signed, and checked by its signature); only what can revoke it is. Owned by the keys module.
 */
export const AccessTokenEntity = defineEntity({
  name: "AccessToken",
  tableName: "access_tokens",
  properties: {
    id: p.string().columnType("char(21)").primary(),
    key: foreignKey(ApiKeyEntity, "access_tokens", "key_id", "cascade").index("access_tokens_key_id_index"),
    tokenUse: p.enum(["access", "refresh"]).columnType("varchar(8)"),
    /** A refresh token's access token (revoking the access token revokes its refresh token too). */
    parentId: p.string().columnType("char(21)").nullable().index("access_tokens_parent_id_index"),
    expiresAt: p.datetime().index("access_tokens_expires_at_index"),
    revokedAt: p.datetime().nullable(),
    createdAt: p
      .datetime()
      .defaultRaw("now()")
      .onCreate(() => new Date()),
  },
});
