import { defineEntity, p } from "@mikro-orm/core";
import { foreignKey } from "../../db/foreign-key.js";
import { GatewayEntity } from "../gateways/index.js";
import { ApiKeyEntity } from "../keys/index.js";

// The schema of the messages module's two tables, defined once; the migrations create it and a test
// checks that they agree. Statements on these tables are written by hand in message.repository.ts
// (each message passes through them several times).

const statuses = ["queued", "dispatched", "sent", "delivered", "failed", "expired", "cancelled"];

/** An outbound SMS. Owned by the messages module. */
export const MessageEntity = defineEntity({
  name: "Message",
  tableName: "messages",
  properties: {
    id: p.string().length(32).primary(),
    clientKey: foreignKey(ApiKeyEntity, "messages", "client_key_id", "set null").nullable(),
    /** The number in E.164; for an encrypted message, the opaque string the client sent. */
    recipient: p.string().length(255),
    body: p.text(),
    status: p.enum(statuses).columnType("varchar(16)").default("queued"),
    priority: p.integer().default(0),
    sendAt: p.datetime().nullable(),
    expiresAt: p.datetime(),
    preferredGateway: foreignKey(GatewayEntity, "messages", "preferred_gateway_id", "set null").nullable(),
    gateway: foreignKey(GatewayEntity, "messages", "gateway_id", "set null").nullable(),
    metadata: p.json().columnType("jsonb").default("{}"),
    idempotencyKey: p.string().length(300).nullable(),
    requestDigest: p.string().columnType("char(64)").nullable(),
    attempts: p.integer().default(0),
    ackedAt: p.datetime().nullable(),
    /** When the phone holding it fetched it (the SMSGate app's `GET /message`); null until then. */
    fetchedAt: p.datetime().nullable(),
    workflowStartedAt: p.datetime().nullable(),
    createdAt: p.datetime().defaultRaw("now()"),
    dispatchedAt: p.datetime().nullable(),
    sentAt: p.datetime().nullable(),
    deliveredAt: p.datetime().nullable(),
    failedAt: p.datetime().nullable(),
    expiredAt: p.datetime().nullable(),
    cancelledAt: p.datetime().nullable(),
    /** When the phone that fetched it confirmed its cancel (until then a polling phone is told: `Cancelling`). */
    cancelConfirmedAt: p.datetime().nullable(),
    errorMessage: p.text().nullable(),
    updatedAt: p.datetime().defaultRaw("now()"),
    sealedBody: p.text().nullable(),
    traceContext: p.string().length(128).nullable(),
    /** The client's own id of the logical message (SMSGate's `id`), shared by its recipients. */
    extId: p.string().length(36).nullable(),
    /** The SIM to send from (1-3); the phone's own choice when null. */
    simNumber: p.smallint().nullable(),
    /** Whether the phone asks the network for a delivery report. */
    deliveryReport: p.boolean().default(true),
    /** The body and the number are end-to-end encrypted: opaque here, opened by the phone. */
    encrypted: p.boolean().default(false),
    /** A data SMS to this port; the body is the data in base64. */
    dataPort: p.integer().nullable(),
    /** The recipient's place (from 0) in the list of its logical message. */
    extPosition: p.smallint().nullable(),
  },
  checks: [
    { name: "messages_sim_number_check", expression: "sim_number >= 1 and sim_number <= 3" },
    { name: "messages_data_port_check", expression: "data_port >= 0 and data_port <= 65535" },
  ],
  uniques: [{ name: "messages_idempotency_unique", properties: ["clientKey", "idempotencyKey"] }],
  indexes: [
    {
      name: "messages_ext_unique",
      expression:
        'create unique index "messages_ext_unique" on "messages" ("client_key_id", "ext_id", "recipient") where "ext_id" is not null',
    },
    {
      name: "messages_ext_index",
      expression: 'create index "messages_ext_index" on "messages" ("ext_id") where "ext_id" is not null',
    },
    {
      name: "messages_pending_index",
      expression:
        'create index "messages_pending_index" on "messages" ("status", "priority" desc, "created_at") where "status" in (\'queued\', \'dispatched\')',
    },
    { name: "messages_gateway_status_index", properties: ["gateway", "status"] },
    {
      name: "messages_unstarted_index",
      expression:
        'create index "messages_unstarted_index" on "messages" ("created_at") where "workflow_started_at" is null',
    },
    { name: "messages_sent_at_index", properties: ["sentAt"] },
    { name: "messages_failed_at_index", properties: ["failedAt"] },
    {
      name: "messages_created_index",
      expression: 'create index "messages_created_index" on "messages" ("created_at" desc, "id" desc)',
    },
    {
      name: "messages_key_created_index",
      expression:
        'create index "messages_key_created_index" on "messages" ("client_key_id", "created_at" desc, "id" desc)',
    },
    {
      name: "messages_status_created_index",
      expression: 'create index "messages_status_created_index" on "messages" ("status", "created_at" desc, "id" desc)',
    },
    {
      name: "messages_gateway_created_index",
      expression:
        'create index "messages_gateway_created_index" on "messages" ("gateway_id", "created_at" desc, "id" desc)',
    },
    {
      name: "messages_recipient_created_index",
      expression:
        'create index "messages_recipient_created_index" on "messages" ("recipient", "created_at" desc, "id" desc)',
    },
  ],
});

/** One attempt to send a message through one gateway. Owned by the messages module. */
export const MessageAttemptEntity = defineEntity({
  name: "MessageAttempt",
  tableName: "message_attempts",
  properties: {
    id: p.integer().primary().autoincrement(),
    message: foreignKey(MessageEntity, "message_attempts", "message_id", "cascade"),
    attempt: p.integer(),
    gateway: foreignKey(GatewayEntity, "message_attempts", "gateway_id", "set null").nullable(),
    dispatchedAt: p.datetime().defaultRaw("now()"),
    ackedAt: p.datetime().nullable(),
    endedAt: p.datetime().nullable(),
    outcome: p.string().length(16).nullable(),
    error: p.text().nullable(),
  },
  uniques: [{ name: "message_attempts_message_id_attempt_key", properties: ["message", "attempt"] }],
});
