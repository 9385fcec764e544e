import { defineEntity, type InferEntity, p } from "@mikro-orm/core";

/** What a device last reported of itself; kept in the gateway's `metadata`. */
export interface GatewayMetadata {
  battery_level?: number;
  signal_strength?: number;
  messages_in_queue?: number;
  reported_at?: string;
  [key: string]: unknown;
}

/** A registered Android device that sends and receives SMS. Owned by the gateways module. */
export const GatewayEntity = defineEntity({
  name: "Gateway",
  tableName: "gateways",
  properties: {
    id: p.integer().primary().autoincrement(),
    deviceId: p.string().length(255).unique("gateways_device_id_key"),
    name: p.string().length(255),
    status: p.enum(["online", "offline"]).columnType("varchar(16)").default("offline"),
    lastHeartbeatAt: p.datetime().nullable(),
    messagesSentToday: p.integer().default(0),
    messagesReceivedToday: p.integer().default(0),
    totalMessagesSent: p.integer().default(0),
    totalMessagesReceived: p.integer().default(0),
    active: p.boolean().default(true),
    priority: p.integer().default(1),
    metadata: p.json<GatewayMetadata>().columnType("jsonb").default("{}"),
    /**
     * The account (a client key with a login) the gateway belongs to: a phone running SMSGate's app
     * is its account's, and that account's messages go to its gateways only. Null: the operator's fleet.
     */
    accountKeyId: p.integer().nullable(),
    createdAt: p
      .datetime()
      .defaultRaw("now()")
      .onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .defaultRaw("now()")
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
  indexes: [
    {
      // The gateways a message may be given, for the picker's window (Migration20261202040000).
      name: "gateways_pickable_index",
      expression:
        'create index "gateways_pickable_index" on "gateways" ("priority" desc, "id") where active and status = \'online\'',
    },
    {
      // An account's gateways a message may be given (Migration20261207000000).
      name: "gateways_account_pickable_index",
      expression:
        'create index "gateways_account_pickable_index" on "gateways" ("account_key_id", "priority" desc, "id") where active and status = \'online\' and account_key_id is not null',
    },
  ],
});

export type GatewayRecord = InferEntity<typeof GatewayEntity>;
