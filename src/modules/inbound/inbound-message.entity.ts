import { defineEntity, p } from "@mikro-orm/core";
import { foreignKey } from "../../db/foreign-key.js";
import { GatewayEntity } from "../gateways/index.js";

/** An SMS a gateway received. Owned by the inbound module. */
export const InboundMessageEntity = defineEntity({
  name: "InboundMessage",
  tableName: "inbound_messages",
  properties: {
    id: p.string().length(32).primary(),
    gateway: foreignKey(GatewayEntity, "inbound_messages", "gateway_id", "set null").nullable(),
    sender: p.string().length(32),
    body: p.text(),
    receivedAt: p.datetime(),
    dedupeDigest: p.string().columnType("char(64)"),
    createdAt: p.datetime().defaultRaw("now()"),
  },
  uniques: [{ name: "inbound_messages_dedupe_unique", properties: ["dedupeDigest"] }],
  indexes: [
    {
      name: "inbound_messages_received_at_index",
      expression:
        'create index "inbound_messages_received_at_index" on "inbound_messages" ("received_at" desc, "id" desc)',
    },
    {
      name: "inbound_messages_sender_index",
      expression: 'create index "inbound_messages_sender_index" on "inbound_messages" ("sender", "received_at" desc)',
    },
  ],
});
