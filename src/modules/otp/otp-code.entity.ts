import { defineEntity, p } from "@mikro-orm/core";
import { foreignKey } from "../../db/foreign-key.js";
import { ApiKeyEntity } from "../keys/index.js";
import { MessageEntity } from "../messages/index.js";

/** A one-time password: only a keyed hash of the code is stored. Owned by the OTP module. */
export const OtpCodeEntity = defineEntity({
  name: "OtpCode",
  tableName: "otp_codes",
  properties: {
    id: p.string().length(32).primary(),
    clientKey: foreignKey(ApiKeyEntity, "otp_codes", "client_key_id", "set null").nullable(),
    phoneNumber: p.string().length(20),
    purpose: p.string().length(64),
    codeHash: p.string().columnType("char(64)"),
    attempts: p.integer().default(0),
    maxAttempts: p.integer(),
    status: p
      .enum(["pending", "verified", "expired", "replaced", "exhausted"])
      .columnType("varchar(16)")
      .default("pending"),
    message: foreignKey(MessageEntity, "otp_codes", "message_id", "set null").nullable(),
    expiresAt: p.datetime(),
    createdAt: p.datetime().defaultRaw("now()"),
    verifiedAt: p.datetime().nullable(),
  },
  indexes: [
    {
      name: "otp_codes_one_pending",
      expression:
        'create unique index "otp_codes_one_pending" on "otp_codes" ("phone_number", "purpose") where "status" = \'pending\'',
    },
    { name: "otp_codes_phone_created_index", properties: ["phoneNumber", "createdAt"] },
    { name: "otp_codes_key_created_index", properties: ["clientKey", "createdAt"] },
    { name: "otp_codes_created_index", properties: ["createdAt"] },
    { name: "otp_codes_verified_index", properties: ["verifiedAt"] },
    { name: "otp_codes_expires_index", properties: ["expiresAt"] },
  ],
});
