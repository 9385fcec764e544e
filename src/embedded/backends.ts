import type { Logger } from "pino";
import type { Config, ConnectedConfig } from "../config.js";
import { type EmbeddedPostgres, startEmbeddedPostgres } from "./postgres.js";
import { type EmbeddedRedis, findEmbeddedRedis, startEmbeddedRedis } from "./redis.js";

/** A backend smsgw can run for itself when none is configured. */
export type EmbeddedBackend = "database" | "redis" | "temporal";

/** The database and Redis a process works with: the configured ones, or embedded ones it started or found. */
export interface Backends {
  readonly config: ConnectedConfig;
  /** Which of them are embedded (none when DATABASE_URL and REDIS_URL are set). */
  readonly embedded: readonly EmbeddedBackend[];
  /** Stops the embedded ones this process started (after the server has drained). */
  stop(): Promise<void>;
}

/** The configured database, or the embedded PostgreSQL of `config`'s data folder, started or found running. */
async function database(config: Config, logger: Logger): Promise<{ url: string; postgres?: EmbeddedPostgres }> {
  if (config.databaseUrl !== undefined) return { url: config.databaseUrl };
  const postgres = await startEmbeddedPostgres({
    dir: config.embedded.postgresDir,
    port: config.embedded.postgresPort,
    database: "smsgw",
    durable: true,
    logger,
  });
  return { url: postgres.url, postgres };
}

/** The configured Redis, or one served in this process. */
async function redisOf(config: Config, logger: Logger): Promise<{ url: string; redis?: EmbeddedRedis }> {
  if (config.redisUrl !== undefined) return { url: config.redisUrl };
  const redis = await startEmbeddedRedis({ stateFile: config.embedded.redisStateFile, logger });
  return { url: redis.url, redis };
}

/**
 * The configured PostgreSQL and Redis, or, for each that is not configured (DATABASE_URL, REDIS_URL
 * unset), an embedded one: PostgreSQL from npm in `DATA_DIR/pg`, Redis in this process.
 */
export async function startBackends(config: Config, logger: Logger): Promise<Backends> {
  const { url: databaseUrl, postgres } = await database(config, logger);
  let redisUrl: string;
  let redis: EmbeddedRedis | undefined;
  try {
    ({ url: redisUrl, redis } = await redisOf(config, logger));
  } catch (error) {
    await postgres?.stop();
    throw error;
  }
  const embedded: EmbeddedBackend[] = [];
  if (postgres !== undefined) embedded.push("database");
  if (redis !== undefined) embedded.push("redis");
  return {
    config: { ...config, databaseUrl, redisUrl },
    embedded,
    async stop() {
      await redis?.stop();
      await postgres?.stop();
    },
  };
}

/**
 * For a command beside the server (`smsgw seed`, `keys …`): the database (the embedded one is
 * started for the command when no server keeps it) and the Redis of a running server, if any (an
 * embedded Redis lives only while its server does; with none there is nobody to tell).
 */
export async function commandBackends(
  config: Config,
  logger: Logger,
): Promise<{ databaseUrl: string; redisUrl: string | undefined; stop(): Promise<void> }> {
  const { url: databaseUrl, postgres } = await database(config, logger);
  const redisUrl = config.redisUrl ?? (await findEmbeddedRedis(config.embedded.redisStateFile))?.url;
  return {
    databaseUrl,
    redisUrl,
    stop: async () => postgres?.stop(),
  };
}
