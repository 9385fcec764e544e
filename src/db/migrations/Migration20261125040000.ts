import { Migration } from "@mikro-orm/migrations";

/**
 * A message whose text holds a secret (an OTP code) stores that text masked in `body`, and the text
 * itself only encrypted in `sealed_body`, until a phone has sent it.
 */
export class Migration20261125040000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "messages" add column "sealed_body" text null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "messages" drop column "sealed_body";`);
  }
}
