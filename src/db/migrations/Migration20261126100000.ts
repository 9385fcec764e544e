import { Migration } from "@mikro-orm/migrations";

/**
 * The console's lists, newest first, page by page with any filter: each filter an index whose
 * order is the list's, so that a page is a short range scan however many messages are stored.
 */
export class Migration20261126100000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create index "messages_created_index" on "messages" ("created_at" desc, "id" desc);`);
    this.addSql(
      `create index "messages_key_created_index" on "messages" ("client_key_id", "created_at" desc, "id" desc);`,
    );
    this.addSql(`create index "messages_status_created_index" on "messages" ("status", "created_at" desc, "id" desc);`);
    this.addSql(
      `create index "messages_gateway_created_index" on "messages" ("gateway_id", "created_at" desc, "id" desc);`,
    );
    this.addSql(
      `create index "messages_recipient_created_index" on "messages" ("recipient", "created_at" desc, "id" desc);`,
    );
  }

  override async down(): Promise<void> {
    for (const name of ["created", "key_created", "status_created", "gateway_created", "recipient_created"]) {
      this.addSql(`drop index "messages_${name}_index";`);
    }
  }
}
