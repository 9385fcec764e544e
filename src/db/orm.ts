import { Migrator } from "@mikro-orm/migrations";
import { defineConfig, MikroORM, PostgreSqlDriver } from "@mikro-orm/postgresql";
import pg from "pg";
import { EventEntity } from "../modules/events/index.js";
import { GatewayEntity } from "../modules/gateways/index.js";
import { InboundMessageEntity } from "../modules/inbound/index.js";
import { AccessTokenEntity, ApiKeyEntity } from "../modules/keys/index.js";
import { MessageAttemptEntity, MessageEntity } from "../modules/messages/index.js";
import { OtpCodeEntity } from "../modules/otp/index.js";
import { WebhookAttemptEntity, WebhookDeliveryEntity, WebhookEntity } from "../modules/webhooks/index.js";
import { Migration20261125000000 } from "./migrations/Migration20261125000000.js";
import { Migration20261125010000 } from "./migrations/Migration20261125010000.js";
import { Migration20261125020000 } from "./migrations/Migration20261125020000.js";
import { Migration20261125030000 } from "./migrations/Migration20261125030000.js";
import { Migration20261125040000 } from "./migrations/Migration20261125040000.js";
import { Migration20261126000000 } from "./migrations/Migration20261126000000.js";
import { Migration20261126100000 } from "./migrations/Migration20261126100000.js";
import { Migration20261202000000 } from "./migrations/Migration20261202000000.js";
import { Migration20261202010000 } from "./migrations/Migration20261202010000.js";
import { Migration20261202020000 } from "./migrations/Migration20261202020000.js";
import { Migration20261202030000 } from "./migrations/Migration20261202030000.js";
import { Migration20261202040000 } from "./migrations/Migration20261202040000.js";
import { Migration20261207000000 } from "./migrations/Migration20261207000000.js";

/** Every migration, in order. Listed here rather than found by file glob, so bundlers and tsx agree. */
const migrations = [
  { name: "Migration20261125000000", class: Migration20261125000000 },
  { name: "Migration20261125010000", class: Migration20261125010000 },
  { name: "Migration20261125020000", class: Migration20261125020000 },
  { name: "Migration20261125030000", class: Migration20261125030000 },
  { name: "Migration20261125040000", class: Migration20261125040000 },
  { name: "Migration20261126000000", class: Migration20261126000000 },
  { name: "Migration20261126100000", class: Migration20261126100000 },
  { name: "Migration20261202000000", class: Migration20261202000000 },
  { name: "Migration20261202010000", class: Migration20261202010000 },
  { name: "Migration20261202020000", class: Migration20261202020000 },
  { name: "Migration20261202030000", class: Migration20261202030000 },
  { name: "Migration20261202040000", class: Migration20261202040000 },
  { name: "Migration20261207000000", class: Migration20261207000000 },
];

/** The MikroORM configuration for a database URL. */
export function ormConfig(databaseUrl: string, debug = false) {
  return defineConfig({
    driver: PostgreSqlDriver,
    clientUrl: databaseUrl,
    // Every table, each defined once by the module that owns it.
    entities: [
      GatewayEntity,
      ApiKeyEntity,
      AccessTokenEntity,
      MessageEntity,
      MessageAttemptEntity,
      EventEntity,
      InboundMessageEntity,
      WebhookEntity,
      WebhookDeliveryEntity,
      WebhookAttemptEntity,
      OtpCodeEntity,
    ],
    extensions: [Migrator],
    migrations: { migrationsList: migrations, tableName: "mikro_orm_migrations", transactional: true, silent: true },
    pool: { min: 0, max: 10 },
    debug,
    allowGlobalContext: false,
  });
}

/** Creates the database named in `databaseUrl` when it does not exist yet. */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ""));
  if (name === "") return;
  url.pathname = "/postgres";
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const found = await client.query("select 1 from pg_database where datname = $1", [name]);
    if (found.rowCount === 0) {
      await client.query(`create database "${name.replaceAll('"', '""')}"`).catch((error: unknown) => {
        // Another process may have created it between the check and here.
        if ((error as { code?: string }).code !== "42P04") throw error;
      });
    }
  } finally {
    await client.end();
  }
}

/** Connects to PostgreSQL. */
export async function openOrm(databaseUrl: string): Promise<MikroORM> {
  return MikroORM.init(ormConfig(databaseUrl));
}

/** Applies every pending migration; returns the names of those applied. */
export async function migrate(orm: MikroORM): Promise<string[]> {
  // Several instances started at once against a new database would each create the migrations table
  // and apply the same migrations: one at a time, under a session lock, and the later ones find
  // nothing left to do.
  const lock = new pg.Client({ connectionString: orm.config.get("clientUrl") });
  await lock.connect();
  try {
    await lock.query("select pg_advisory_lock(hashtext('smsgw migrations'))");
    const applied = await orm.getMigrator().up();
    return applied.map((migration) => migration.name);
  } finally {
    await lock.end();
  }
}

/** Whether PostgreSQL answers (the health check). */
export async function databaseAnswers(orm: MikroORM): Promise<void> {
  await orm.em.getConnection().execute("select 1");
}
