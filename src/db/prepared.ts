import { createHash } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";

/** The part of a `pg` client a prepared statement needs. */
interface PgClient {
  query(config: { name?: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }>;
}

/** The part of knex's client that lends out pooled connections. */
interface PooledClient {
  acquireConnection(): Promise<PgClient>;
  releaseConnection(connection: PgClient): unknown;
}

/** Statements given a name (kept prepared on every pooled connection that ran them); the rest run as before. */
const maxNamed = 500;

/**
 * The name of each statement (by its numbered text), shared by every user of a pool: a pooled
 * connection keeps one text per name. Named after the text's hash; a new name once PostgreSQL refused
 * the old one's plan.
 */
const names = new Map<string, string>();
let renamed = 0;

function nameOf(text: string): string {
  let name = names.get(text);
  if (name === undefined) {
    name = `smsgw_${createHash("sha1").update(text).digest("hex").slice(0, 20)}`;
    names.set(text, name);
  }
  return name;
}

/**
 * Rewrites `?` placeholders to PostgreSQL's `$1, $2, …`, leaving quoted text and identifiers alone;
 * undefined when the statement holds a `??` (knex's identifier placeholder), which it cannot map.
 */
export function numberedPlaceholders(sql: string): string | undefined {
  let out = "";
  let n = 0;
  let quote: string | undefined;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i] as string;
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      out += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      out += c;
    } else if (c === "?") {
      if (sql[i + 1] === "?") return undefined;
      out += `$${++n}`;
    } else out += c;
  }
  return out;
}

/**
 * Runs SQL on the ORM's pool as prepared statements: PostgreSQL parses and plans each statement once
 * per connection rather than on every call, and the values travel as parameters rather than being
 * written into the text. Same pool, same connections and type parsers as the ORM's own queries, so
 * rows come back exactly as `execute` gives them. Statements inside a transaction (an `em` with one),
 * and those with list values (which knex spreads into `?, ?, …`), go through the ORM as before.
 */
export class PreparedStatements {
  /** Each statement's numbered text, or null for one that runs through the ORM. */
  private readonly texts = new Map<string, string | null>();

  constructor(private readonly em: EntityManager) {}

  /** Every row the statement returns. */
  async all<T>(sql: string, params: readonly unknown[] = [], em?: EntityManager): Promise<T[]> {
    const transaction = em?.getTransactionContext();
    const text = transaction === undefined && !params.some(Array.isArray) ? this.textOf(sql) : null;
    if (text === null) return this.em.getConnection().execute(sql, [...params], "all", transaction);
    return this.onPool<T>(text, params);
  }

  /**
   * Every row of a statement whose list values travel as PostgreSQL arrays (`unnest(?::int[])`,
   * `= any(?::text[])`): one prepared statement, however many values. Never inside a transaction.
   */
  async allWithArrays<T>(sql: string, params: readonly unknown[]): Promise<T[]> {
    const text = this.textOf(sql) ?? numberedPlaceholders(sql);
    if (text === undefined) throw new Error("a statement with arrays cannot hold ?? placeholders");
    return this.onPool<T>(text, params);
  }

  private async onPool<T>(text: string, params: readonly unknown[]): Promise<T[]> {
    const pool = this.em.getConnection().getKnex().client as unknown as PooledClient;
    const connection = await pool.acquireConnection();
    try {
      return (await this.run(connection, text, params)) as T[];
    } finally {
      pool.releaseConnection(connection);
    }
  }

  private async run(connection: PgClient, text: string, params: readonly unknown[]) {
    const values = params.map((value) => (value === undefined ? null : value));
    const name = nameOf(text);
    try {
      return (await connection.query({ name, text, values })).rows;
    } catch (error) {
      // A migration changed a table under a statement kept prepared (`select *` after a new column):
      // PostgreSQL refuses the old plan; the statement is prepared again under a new name.
      if ((error as { code?: string }).code !== "0A000") throw error;
      if (names.get(text) === name) names.set(text, `${name}_${++renamed}`);
      return (await connection.query({ name: nameOf(text), text, values })).rows;
    }
  }

  private textOf(sql: string): string | null {
    const known = this.texts.get(sql);
    if (known !== undefined) return known;
    if (this.texts.size >= maxNamed) return null;
    const text = numberedPlaceholders(sql) ?? null;
    this.texts.set(sql, text);
    return text;
  }
}
