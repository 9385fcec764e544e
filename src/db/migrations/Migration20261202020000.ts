import { Migration } from "@mikro-orm/migrations";

/**
 * What SMSGate's third-party API adds to a message: the client's own id shared by the recipients of
 * one logical message (`ext_id`), the SIM to send from, whether to ask for a delivery report, data
 * SMS (`data_port`; the body is the data in base64), the recipient's place in the message's list
 * (`ext_position`) and end-to-end encrypted content (`encrypted`:
 * the body and the number are opaque, carried unchanged). An encrypted number is longer than a
 * phone number: `recipient` takes up to 255 characters.
 */
export class Migration20261202020000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "messages" alter column "recipient" type varchar(255);`);
    this.addSql(`alter table "messages" add column "ext_id" varchar(36) null,
      add column "sim_number" smallint null, add column "delivery_report" boolean not null default true,
      add column "encrypted" boolean not null default false, add column "data_port" integer null,
      add column "ext_position" smallint null;`);
    this.addSql(`alter table "messages" add constraint "messages_sim_number_check" check (sim_number >= 1 and sim_number <= 3),
      add constraint "messages_data_port_check" check (data_port >= 0 and data_port <= 65535);`);
    this.addSql(
      `create unique index "messages_ext_unique" on "messages" ("client_key_id", "ext_id", "recipient") where "ext_id" is not null;`,
    );
    // An admin key looks a message up by its client id alone.
    this.addSql(`create index "messages_ext_index" on "messages" ("ext_id") where "ext_id" is not null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "messages_ext_index";`);
    this.addSql(`drop index "messages_ext_unique";`);
    this.addSql(`alter table "messages" drop column "ext_id", drop column "sim_number", drop column "delivery_report",
      drop column "encrypted", drop column "data_port", drop column "ext_position";`);
    this.addSql(`alter table "messages" alter column "recipient" type varchar(20);`);
  }
}
