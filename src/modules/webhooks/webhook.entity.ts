import { defineEntity, p } from "@mikro-orm/core";
import { foreignKey } from "../../db/foreign-key.js";
import { EventEntity } from "../events/index.js";
import { ApiKeyEntity } from "../keys/index.js";

// The webhooks module's three tables: the customers' endpoints, one delivery per event and
// endpoint, and every attempt at a delivery.

/** A customer's endpoint and the events it wants. */
export const WebhookEntity = defineEntity({
  name: "Webhook",
  tableName: "webhooks",
  properties: {
    id: p.integer().primary().autoincrement(),
    url: p.string().length(2048),
    events: p.json<string[]>().columnType("jsonb"),
    secretEncrypted: p.text().nullable(),
    active: p.boolean().default(true),
    createdAt: p.datetime().defaultRaw("now()"),
    updatedAt: p.datetime().defaultRaw("now()"),
    /** `smsgate`: made through SMSGate's third-party API, sent in its shape and signature. */
    dialect: p.enum(["smsgw", "smsgate"]).columnType("varchar(16)").default("smsgw"),
    /** The credential that made it (SMSGate's webhooks are an account's own). */
    clientKey: foreignKey(ApiKeyEntity, "webhooks", "client_key_id", "cascade").nullable(),
    /** SMSGate's id of it, unique per credential. */
    extId: p.string().length(36).nullable(),
    /** Only this phone's events (its device id). */
    deviceId: p.string().length(255).nullable(),
  },
  indexes: [
    {
      name: "webhooks_ext_unique",
      expression:
        'create unique index "webhooks_ext_unique" on "webhooks" ("client_key_id", "ext_id") where "ext_id" is not null',
    },
  ],
});

/** One event to be delivered to one endpoint. */
export const WebhookDeliveryEntity = defineEntity({
  name: "WebhookDelivery",
  tableName: "webhook_deliveries",
  properties: {
    id: p.string().length(32).primary(),
    webhook: foreignKey(WebhookEntity, "webhook_deliveries", "webhook_id", "cascade"),
    event: foreignKey(EventEntity, "webhook_deliveries", "event_id", "cascade").fieldName("event_id"),
    eventType: p.string().length(32).fieldName("event"),
    status: p.enum(["pending", "succeeded", "failed"]).columnType("varchar(16)").default("pending"),
    attempts: p.integer().default(0),
    createdAt: p.datetime().defaultRaw("now()"),
    completedAt: p.datetime().nullable(),
  },
  uniques: [{ name: "webhook_deliveries_webhook_id_event_id_key", properties: ["webhook", "event"] }],
  indexes: [
    {
      name: "webhook_deliveries_webhook_index",
      expression:
        'create index "webhook_deliveries_webhook_index" on "webhook_deliveries" ("webhook_id", "created_at" desc)',
    },
  ],
});

/** One POST of a delivery, with its answer. */
export const WebhookAttemptEntity = defineEntity({
  name: "WebhookAttempt",
  tableName: "webhook_attempts",
  properties: {
    id: p.bigint("string").primary().autoincrement(),
    delivery: foreignKey(WebhookDeliveryEntity, "webhook_attempts", "delivery_id", "cascade"),
    attempt: p.integer(),
    startedAt: p.datetime(),
    statusCode: p.integer().nullable(),
    durationMs: p.integer(),
    error: p.text().nullable(),
  },
  uniques: [{ name: "webhook_attempts_delivery_id_attempt_key", properties: ["delivery", "attempt"] }],
});
