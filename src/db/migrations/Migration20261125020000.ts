import { Migration } from "@mikro-orm/migrations";

/** Inbound SMS, webhook endpoints and their deliveries and attempts; gateway events. */
export class Migration20261125020000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table "inbound_messages" (
        "id" varchar(32) primary key,
        "gateway_id" int null references "gateways" ("id") on delete set null,
        "sender" varchar(32) not null,
        "body" text not null,
        "received_at" timestamptz not null,
        "dedupe_digest" char(64) not null,
        "created_at" timestamptz not null default now()
      );`);
    this.addSql(`create unique index "inbound_messages_dedupe_unique" on "inbound_messages" ("dedupe_digest");`);
    this.addSql(
      `create index "inbound_messages_received_at_index" on "inbound_messages" ("received_at" desc, "id" desc);`,
    );
    this.addSql(`create index "inbound_messages_sender_index" on "inbound_messages" ("sender", "received_at" desc);`);

    // json keeps the payload's key order, which webhooks deliver as documented; jsonb would sort it.
    this.addSql(`alter table "events" alter column "payload" type json using "payload"::text::json;`);
    this.addSql(`alter table "events" add column "dispatched_at" timestamptz null;`);
    this.addSql(`create index "events_undispatched_index" on "events" ("created_at") where "dispatched_at" is null;`);

    this.addSql(`
      create table "webhooks" (
        "id" serial primary key,
        "url" varchar(2048) not null,
        "events" jsonb not null,
        "secret_encrypted" text null,
        "active" boolean not null default true,
        "created_at" timestamptz not null default now(),
        "updated_at" timestamptz not null default now()
      );`);
    this.addSql(`
      create table "webhook_deliveries" (
        "id" varchar(32) primary key,
        "webhook_id" int not null references "webhooks" ("id") on delete cascade,
        "event_id" bigint not null references "events" ("id") on delete cascade,
        "event" varchar(32) not null,
        "status" varchar(16) not null default 'pending' check ("status" in ('pending', 'succeeded', 'failed')),
        "attempts" int not null default 0,
        "created_at" timestamptz not null default now(),
        "completed_at" timestamptz null,
        unique ("webhook_id", "event_id")
      );`);
    this.addSql(
      `create index "webhook_deliveries_webhook_index" on "webhook_deliveries" ("webhook_id", "created_at" desc);`,
    );
    this.addSql(`
      create table "webhook_attempts" (
        "id" bigserial primary key,
        "delivery_id" varchar(32) not null references "webhook_deliveries" ("id") on delete cascade,
        "attempt" int not null,
        "started_at" timestamptz not null,
        "status_code" int null,
        "duration_ms" int not null,
        "error" text null,
        unique ("delivery_id", "attempt")
      );`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "webhook_attempts";`);
    this.addSql(`drop table if exists "webhook_deliveries";`);
    this.addSql(`drop table if exists "webhooks";`);
    this.addSql(`alter table "events" drop column if exists "dispatched_at";`);
    this.addSql(`alter table "events" alter column "payload" type jsonb using "payload"::jsonb;`);
    this.addSql(`drop table if exists "inbound_messages";`);
  }
}
