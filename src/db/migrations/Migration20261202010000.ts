import { Migration } from "@mikro-orm/migrations";

/**
 * When the phone holding a message fetched it (the SMSGate app's `GET /message`): such a phone sends
 * what it fetches, so the message stays its own while it is connected or within the dispatch timeout.
 */
export class Migration20261202010000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "messages" add column "fetched_at" timestamptz null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "messages" drop column "fetched_at";`);
  }
}
