import { Migration } from "@mikro-orm/migrations";

/**
 * Webhooks registered through SMSGate's third-party API: they belong to the credential that made
 * them (`client_key_id`), carry SMSGate's own id (`ext_id`, unique per credential: a POST with a
 * known id replaces that webhook) and optionally a phone (`device_id`), and are sent in SMSGate's
 * shape and signature (`dialect`). The key they are signed with is the account's, kept encrypted
 * on its key (`api_keys.smsgate_signing_key`).
 */
export class Migration20261202030000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "webhooks" add column "dialect" varchar(16) not null default 'smsgw',
      add column "client_key_id" int null, add column "ext_id" varchar(36) null, add column "device_id" varchar(255) null;`);
    this.addSql(
      `alter table "webhooks" add constraint "webhooks_dialect_check" check (dialect in ('smsgw', 'smsgate'));`,
    );
    this.addSql(`alter table "webhooks" add constraint "webhooks_client_key_id_fkey" foreign key ("client_key_id")
      references "api_keys" ("id") on delete cascade;`);
    this.addSql(
      `create unique index "webhooks_ext_unique" on "webhooks" ("client_key_id", "ext_id") where "ext_id" is not null;`,
    );
    this.addSql(`alter table "api_keys" add column "smsgate_signing_key" text null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "api_keys" drop column "smsgate_signing_key";`);
    this.addSql(`drop index "webhooks_ext_unique";`);
    this.addSql(`alter table "webhooks" drop constraint "webhooks_client_key_id_fkey";`);
    this.addSql(`alter table "webhooks" drop constraint "webhooks_dialect_check";`);
    this.addSql(`alter table "webhooks" drop column "dialect", drop column "client_key_id", drop column "ext_id",
      drop column "device_id";`);
  }
}
