import { Migration } from "@mikro-orm/migrations";

/**
 * The account a gateway belongs to (a phone running SMSGate's app signed up into its own account,
 * or joined one with its login): such an account's messages go to its gateways only. Filled from
 * the login the registration kept in `metadata.account`; the picker reads an account's gateways
 * through its own index, as it reads the whole fleet's. And when a phone that fetched a message
 * confirmed its cancel (`cancel_confirmed_at`): until then a polling phone is served it as `Cancelling`.
 * And the signed tokens (JWTs) a client key issued for itself (`access_tokens`), so they can be revoked.
 */
export class Migration20261207000000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "gateways" add column "account_key_id" int null;`);
    this.addSql(`alter table "messages" add column "cancel_confirmed_at" timestamptz null;`);
    this.addSql(
      `create table "access_tokens" ("id" char(21) not null, "key_id" int not null, "token_use" varchar(8) not null,
        "parent_id" char(21) null, "expires_at" timestamptz not null, "revoked_at" timestamptz null,
        "created_at" timestamptz not null default now(), constraint "access_tokens_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "access_tokens_key_id_index" on "access_tokens" ("key_id");`);
    this.addSql(`create index "access_tokens_parent_id_index" on "access_tokens" ("parent_id");`);
    this.addSql(`create index "access_tokens_expires_at_index" on "access_tokens" ("expires_at");`);
    this.addSql(
      `alter table "access_tokens" add constraint "access_tokens_key_id_fkey" foreign key ("key_id")
        references "api_keys" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "access_tokens" add constraint "access_tokens_token_use_check" check ("token_use" in ('access', 'refresh'));`,
    );
    this.addSql(
      `update "gateways" g set "account_key_id" = k."id" from "api_keys" k
        where k."login" is not null and k."login" = g."metadata"->>'account';`,
    );
    this.addSql(
      `create index "gateways_account_pickable_index" on "gateways" ("account_key_id", "priority" desc, "id")
        where active and status = 'online' and account_key_id is not null;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table "access_tokens";`);
    this.addSql(`drop index "gateways_account_pickable_index";`);
    this.addSql(`alter table "gateways" drop column "account_key_id";`);
    this.addSql(`alter table "messages" drop column "cancel_confirmed_at";`);
  }
}
