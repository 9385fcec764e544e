import { defineEntity, p } from "@mikro-orm/core";

/**
 * Something that happened (a message sent, delivered or failed; an SMS received), recorded once, in
 * the transaction that made it happen, for the webhooks: the outbox. Owned by the events module.
 */
export const EventEntity = defineEntity({
  name: "Event",
  tableName: "events",
  properties: {
    id: p.bigint("string").primary().autoincrement(),
    type: p.string().length(32),
    messageId: p.string().length(32).nullable(),
    // json keeps the payload's key order, which webhooks deliver as documented; jsonb would sort it.
    payload: p.json().columnType("json"),
    createdAt: p.datetime().defaultRaw("now()"),
    dispatchedAt: p.datetime().nullable(),
  },
  indexes: [
    {
      name: "events_message_type_unique",
      expression:
        'create unique index "events_message_type_unique" on "events" ("message_id", "type") where "message_id" is not null',
    },
    {
      name: "events_undispatched_index",
      expression: 'create index "events_undispatched_index" on "events" ("created_at") where "dispatched_at" is null',
    },
  ],
});
