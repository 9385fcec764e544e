import type { EntityManager } from "@mikro-orm/postgresql";

/**
 * Runs a repository's hand-written statements through the ORM's public API: the query builder's
 * `raw` on the ORM's own knex instance (or on the transaction an `em` holds), so they share its pool,
 * its connections and its type parsers. The values travel as parameters of PostgreSQL's extended
 * protocol, never written into the text; `?` is a value, and a JavaScript array is one PostgreSQL
 * array (`unnest(?::int[])`, `= any(?::text[])`). Only repositories hold one.
 */
export class Sql {
  constructor(private readonly em: EntityManager) {}

  /** Every row the statement returns; inside `em`'s transaction when it has one. */
  async all<T>(sql: string, params: readonly unknown[] = [], em?: EntityManager): Promise<T[]> {
    const runner = em?.getTransactionContext() ?? this.em.getConnection().getKnex();
    const values = params.map((value) => (value === undefined ? null : value));
    const result: { rows: T[] } = await runner.raw(sql, values);
    return result.rows;
  }

  /** The first row the statement returns, if any. */
  async one<T>(sql: string, params: readonly unknown[] = [], em?: EntityManager): Promise<T | undefined> {
    return (await this.all<T>(sql, params, em))[0];
  }

  /** Runs `work` in one transaction on a fork of the ORM's entity manager. */
  transaction<T>(work: (em: EntityManager) => Promise<T>): Promise<T> {
    return this.em.fork().transactional(work);
  }
}
