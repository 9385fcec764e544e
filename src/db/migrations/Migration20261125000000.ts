import { Migration } from "@mikro-orm/migrations";

/** Gateways and API keys. */
export class Migration20261125000000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table "gateways" (
        "id" serial primary key,
        "device_id" varchar(255) not null unique,
        "name" varchar(255) not null,
        "status" varchar(16) not null default 'offline' check ("status" in ('online', 'offline')),
        "last_heartbeat_at" timestamptz null,
        "messages_sent_today" int not null default 0,
        "messages_received_today" int not null default 0,
        "total_messages_sent" int not null default 0,
        "total_messages_received" int not null default 0,
        "active" boolean not null default true,
        "priority" int not null default 1,
        "metadata" jsonb not null default '{}',
        "created_at" timestamptz not null default now(),
        "updated_at" timestamptz not null default now()
      );`);
    this.addSql(`
      create table "api_keys" (
        "id" serial primary key,
        "scope" varchar(16) not null check ("scope" in ('gateway', 'client', 'admin')),
        "name" varchar(255) not null,
        "digest" char(64) not null unique,
        "hint" varchar(4) not null,
        "gateway_id" int null references "gateways" ("id") on delete cascade,
        "created_at" timestamptz not null default now(),
        "last_used_at" timestamptz null,
        "revoked_at" timestamptz null,
        check (("scope" = 'gateway') = ("gateway_id" is not null))
      );`);
    this.addSql(`create index "api_keys_gateway_id_index" on "api_keys" ("gateway_id");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "api_keys";`);
    this.addSql(`drop table if exists "gateways";`);
  }
}
