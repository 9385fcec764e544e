import { Migration } from "@mikro-orm/migrations";

/**
 * The gateways a message may be given, by priority then id: the picker reads a window of the
 * highest priority through it (and that priority itself), so that a pick does not read the whole
 * fleet. Heartbeats leave its columns alone, so they stay heap-only updates.
 */
export class Migration20261202040000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create index "gateways_pickable_index" on "gateways" ("priority" desc, "id") where active and status = 'online';`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "gateways_pickable_index";`);
  }
}
