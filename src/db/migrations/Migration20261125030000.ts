import { Migration } from "@mikro-orm/migrations";

/** One-time passwords: only a keyed hash of each code is stored. */
export class Migration20261125030000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table "otp_codes" (
        "id" varchar(32) primary key,
        "client_key_id" int null references "api_keys" ("id") on delete set null,
        "phone_number" varchar(20) not null,
        "purpose" varchar(64) not null,
        "code_hash" char(64) not null,
        "attempts" int not null default 0,
        "max_attempts" int not null,
        "status" varchar(16) not null default 'pending'
          check ("status" in ('pending', 'verified', 'expired', 'replaced', 'exhausted')),
        "message_id" varchar(32) null references "messages" ("id") on delete set null,
        "expires_at" timestamptz not null,
        "created_at" timestamptz not null default now(),
        "verified_at" timestamptz null
      );`);
    this.addSql(
      `create unique index "otp_codes_one_pending" on "otp_codes" ("phone_number", "purpose") where "status" = 'pending';`,
    );
    this.addSql(`create index "otp_codes_phone_created_index" on "otp_codes" ("phone_number", "created_at");`);
    this.addSql(`create index "otp_codes_key_created_index" on "otp_codes" ("client_key_id", "created_at");`);
    this.addSql(`create index "otp_codes_created_index" on "otp_codes" ("created_at");`);
    this.addSql(`create index "otp_codes_verified_index" on "otp_codes" ("verified_at");`);
    this.addSql(`create index "otp_codes_expires_index" on "otp_codes" ("expires_at");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "otp_codes";`);
  }
}
