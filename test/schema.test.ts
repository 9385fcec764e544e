import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ensureDatabase, migrate, openOrm } from "../src/db/orm.js";

// The schema is defined once, by the entities of the modules that own the tables; the committed
// migrations build it. On a database made by the migrations alone, the ORM finds nothing to change.
const url = new URL(inject("databaseUrl"));
url.pathname = "/smsgw_schema_test";
const databaseUrl = url.toString();

async function admin(sql: string): Promise<void> {
  const adminUrl = new URL(databaseUrl);
  adminUrl.pathname = "/postgres";
  const client = new pg.Client({ connectionString: adminUrl.toString() });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

let orm: Awaited<ReturnType<typeof openOrm>>;

beforeAll(async () => {
  await admin('drop database if exists "smsgw_schema_test"');
  await ensureDatabase(databaseUrl);
  orm = await openOrm(databaseUrl);
  await migrate(orm);
});
afterAll(async () => {
  await orm.close();
  await admin('drop database if exists "smsgw_schema_test"');
});

describe("the schema", () => {
  it("built by the migrations is the one the entities define: the ORM's diff is empty", async () => {
    expect(await orm.schema.getUpdateSchemaSQL({ wrap: false })).toBe("");
  });

  it("has every table an entity, and every entity a table", async () => {
    const tables: { table_name: string }[] = await orm.em
      .getConnection()
      .execute(
        "select table_name from information_schema.tables where table_schema = 'public' and table_name <> 'mikro_orm_migrations'",
      );
    const entities = Object.values(orm.getMetadata().getAll()).map((meta) => meta.tableName);
    expect(tables.map((row) => row.table_name).sort()).toEqual(entities.sort());
  });

  it("notices a column the entities have and the database lacks", async () => {
    await orm.em.getConnection().execute('alter table "gateways" drop column "priority"');
    try {
      expect(await orm.schema.getUpdateSchemaSQL({ wrap: false })).toContain('add column "priority"');
    } finally {
      await orm.em.getConnection().execute('alter table "gateways" add column "priority" int not null default 1');
    }
  });
});
