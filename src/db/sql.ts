import { createHash } from "node:crypto";
import type { EntityManager, Knex } from "@mikro-orm/postgresql";

/** A transaction that hand-written statements run in (one of the ORM's own connections). */
export type Tx = Knex.Transaction;

/** Statements given a name (kept prepared on every pooled connection that ran them); past that, unnamed. */
const maxNamed = 500;

/**
 * The name each statement text is prepared under, shared by every user of the pool: a pooled
 * connection keeps one text per name. Named after the text's hash; a new name once PostgreSQL refused
 * the old one's plan (a migration changed a table under it).
 */
const names = new Map<string, string>();
let renamed = 0;

function nameOf(sql: string): string | undefined {
  let name = names.get(sql);
  if (name === undefined) {
    if (names.size >= maxNamed) return undefined;
    name = `smsgw_${createHash("sha1").update(sql).digest("hex").slice(0, 20)}`;
    names.set(sql, name);
  }
  return name;
}

/**
 * Runs a repository's hand-written statements on the ORM's own pool, through public APIs only: the
 * ORM's knex instance (`getKnex()`), knex's `raw` (values travel as parameters, never written into
 * the text; `?` is a value, a JavaScript array one PostgreSQL array), and knex's `options()`, which
 * hands node-postgres the statement's `name`: PostgreSQL then parses and plans each statement once per
 * connection instead of on every call. Transactions are knex's own, lighter than the ORM's unit of
 * work, which these statements do not use. Only repositories hold one.
 */
export class Sql {
  private readonly knex: Knex;

  constructor(em: EntityManager) {
    this.knex = em.getConnection().getKnex();
  }

  /** Every row the statement returns; inside `tx` when given. */
  async all<T>(sql: string, params: readonly unknown[] = [], tx?: Tx): Promise<T[]> {
    const values = params.map((value) => (value === undefined ? null : value)) as Knex.RawBinding[];
    const run = async (name: string | undefined): Promise<T[]> => {
      const query = (tx ?? this.knex).raw(sql, values);
      const result: { rows: T[] } = await (name === undefined ? query : query.options({ name }));
      return result.rows;
    };
    const name = nameOf(sql);
    try {
      return await run(name);
    } catch (error) {
      // PostgreSQL refused a plan it kept for an older shape of a table: prepared again, renamed.
      if (name === undefined || (error as { code?: string }).code !== "0A000") throw error;
      if (names.get(sql) === name) names.set(sql, `${name}_${++renamed}`);
      return run(nameOf(sql));
    }
  }

  /** The first row the statement returns, if any. */
  async one<T>(sql: string, params: readonly unknown[] = [], tx?: Tx): Promise<T | undefined> {
    return (await this.all<T>(sql, params, tx))[0];
  }

  /** Runs `work` in one transaction. */
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    return this.knex.transaction(work);
  }
}
