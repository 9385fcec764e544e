import { Migration } from "@mikro-orm/migrations";

/** Outbound messages, their dispatch attempts, and the events they emit. */
export class Migration20261125010000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table "messages" (
        "id" varchar(32) primary key,
        "client_key_id" int null references "api_keys" ("id") on delete set null,
        "recipient" varchar(20) not null,
        "body" text not null,
        "status" varchar(16) not null default 'queued'
          check ("status" in ('queued', 'dispatched', 'sent', 'delivered', 'failed', 'expired', 'cancelled')),
        "priority" int not null default 0,
        "send_at" timestamptz null,
        "expires_at" timestamptz not null,
        "preferred_gateway_id" int null references "gateways" ("id") on delete set null,
        "gateway_id" int null references "gateways" ("id") on delete set null,
        "metadata" jsonb not null default '{}',
        "idempotency_key" varchar(300) null,
        "request_digest" char(64) null,
        "attempts" int not null default 0,
        "acked_at" timestamptz null,
        "workflow_started_at" timestamptz null,
        "created_at" timestamptz not null default now(),
        "dispatched_at" timestamptz null,
        "sent_at" timestamptz null,
        "delivered_at" timestamptz null,
        "failed_at" timestamptz null,
        "expired_at" timestamptz null,
        "cancelled_at" timestamptz null,
        "error_message" text null,
        "updated_at" timestamptz not null default now()
      );`);
    this.addSql(
      `create unique index "messages_idempotency_unique" on "messages" ("client_key_id", "idempotency_key");`,
    );
    this.addSql(`create index "messages_pending_index" on "messages" ("status", "priority" desc, "created_at")
                   where "status" in ('queued', 'dispatched');`);
    this.addSql(`create index "messages_gateway_status_index" on "messages" ("gateway_id", "status");`);
    this.addSql(
      `create index "messages_unstarted_index" on "messages" ("created_at") where "workflow_started_at" is null;`,
    );
    this.addSql(`create index "messages_sent_at_index" on "messages" ("sent_at");`);
    this.addSql(`create index "messages_failed_at_index" on "messages" ("failed_at");`);
    this.addSql(`
      create table "message_attempts" (
        "id" serial primary key,
        "message_id" varchar(32) not null references "messages" ("id") on delete cascade,
        "attempt" int not null,
        "gateway_id" int null references "gateways" ("id") on delete set null,
        "dispatched_at" timestamptz not null default now(),
        "acked_at" timestamptz null,
        "ended_at" timestamptz null,
        "outcome" varchar(16) null,
        "error" text null,
        unique ("message_id", "attempt")
      );`);
    this.addSql(`
      create table "events" (
        "id" bigserial primary key,
        "type" varchar(32) not null,
        "message_id" varchar(32) null,
        "payload" jsonb not null,
        "created_at" timestamptz not null default now()
      );`);
    this.addSql(
      `create unique index "events_message_type_unique" on "events" ("message_id", "type") where "message_id" is not null;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "events";`);
    this.addSql(`drop table if exists "message_attempts";`);
    this.addSql(`drop table if exists "messages";`);
  }
}
