import type { MikroORM } from "@mikro-orm/postgresql";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { openOrm } from "../src/db/orm.js";
import { numberedPlaceholders, PreparedStatements } from "../src/db/prepared.js";
import { unique } from "./helpers.js";

describe("PreparedStatements", () => {
  let orm: MikroORM;
  const table = unique("prepared").replaceAll("-", "_");

  beforeAll(async () => {
    orm = await openOrm(inject("databaseUrl"));
    await orm.em.getConnection().execute(`create table ${table} (id int primary key, at timestamptz, note text)`);
  });
  afterAll(async () => {
    await orm.em.getConnection().execute(`drop table if exists ${table}`);
    await orm.close();
  });

  it("numbers placeholders, leaving question marks in quoted text and names alone", () => {
    expect(numberedPlaceholders(`select '?' as "a?", ? as v, x from t where y = ? and z = 'it''s ?'`)).toBe(
      `select '?' as "a?", $1 as v, x from t where y = $2 and z = 'it''s ?'`,
    );
    expect(numberedPlaceholders("select ?? from t")).toBeUndefined();
  });

  it("returns rows exactly as the ORM's own queries do", async () => {
    const statements = new PreparedStatements(orm.em);
    const at = new Date("2026-11-26T08:00:00.123Z");
    await statements.all(`insert into ${table} (id, at, note) values (?, ?, ?)`, [1, at, "it's ?"]);
    const sql = `select id, at, note, ? as extra from ${table} where id = ?`;
    const prepared = await statements.all(sql, ["x", 1]);
    const viaOrm = await orm.em.getConnection().execute(sql, ["x", 1]);
    expect(prepared).toEqual(viaOrm);
    expect(new Date((prepared[0] as { at: string }).at).getTime()).toBe(at.getTime());
    // Run again on the same pooled connections (the statement is kept prepared): the same answer.
    expect(await statements.all(sql, ["x", 1])).toEqual(viaOrm);
  });

  it("keeps working when a migration changes a table under a statement it keeps prepared", async () => {
    const statements = new PreparedStatements(orm.em);
    const sql = `select * from ${table} where id = ?`;
    // Prepared on every pooled connection that ran it.
    await Promise.all(Array.from({ length: 5 }, () => statements.all(sql, [1])));
    await orm.em.getConnection().execute(`alter table ${table} add column added int not null default 7`);
    const rows = await Promise.all(Array.from({ length: 5 }, () => statements.all<{ added: number }>(sql, [1])));
    for (const [row] of rows) expect(row?.added).toBe(7);
  });

  it("runs statements with list values and those inside a transaction through the ORM", async () => {
    const statements = new PreparedStatements(orm.em);
    expect(await statements.all(`select id from ${table} where id in (?)`, [[1, 2]])).toEqual([{ id: 1 }]);
    await orm.em
      .fork()
      .transactional(async (em) => {
        await statements.all(`insert into ${table} (id, note) values (?, ?)`, [2, "rolled back"], em);
        throw new Error("roll back");
      })
      .catch(() => undefined);
    expect(await statements.all(`select id from ${table} where id = ?`, [2])).toEqual([]);
  });
});
