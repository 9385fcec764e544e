import { Migration } from "@mikro-orm/migrations";

/**
 * Phones running the SMSGate app: registration tokens (a key scope of their own) and SMSGate
 * accounts (a client key with a login, whose password is its secret).
 */
export class Migration20261202000000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "api_keys" drop constraint "api_keys_scope_check";`);
    this.addSql(
      `alter table "api_keys" add constraint "api_keys_scope_check" check ("scope" in ('gateway', 'client', 'admin', 'registration'));`,
    );
    this.addSql(`alter table "api_keys" add column "login" varchar(16) null;`);
    this.addSql(`alter table "api_keys" add constraint "api_keys_login_key" unique ("login");`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "api_keys" drop constraint "api_keys_login_key";`);
    this.addSql(`alter table "api_keys" drop column "login";`);
    this.addSql(`alter table "api_keys" drop constraint "api_keys_scope_check";`);
    this.addSql(
      `alter table "api_keys" add constraint "api_keys_scope_check" check ("scope" in ('gateway', 'client', 'admin'));`,
    );
  }
}
