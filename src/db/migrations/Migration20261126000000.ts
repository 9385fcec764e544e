import { Migration } from "@mikro-orm/migrations";

/**
 * The trace a message was accepted in (a W3C `traceparent`), when tracing is on: its webhook
 * deliveries, started later from whichever process hears the phone's report, join that trace.
 */
export class Migration20261126000000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "messages" add column "trace_context" varchar(128) null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "messages" drop column "trace_context";`);
  }
}
