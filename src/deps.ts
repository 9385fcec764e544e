import type { MikroORM } from "@mikro-orm/postgresql";
import { Client, Connection } from "@temporalio/client";
import { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Config } from "./config.js";
import { openOrm } from "./db/orm.js";
import { GatewaysService } from "./modules/gateways/index.js";
import { KeysService } from "./modules/keys/index.js";
import { RateLimiter } from "./modules/rate-limits/index.js";

/** Everything the server and the worker share, built once. */
export interface Deps {
  readonly config: Config;
  readonly logger: Logger;
  readonly orm: MikroORM;
  readonly redis: Redis;
  readonly temporalAddress: string;
  readonly temporal: Client;
  readonly temporalConnection: Connection;
  readonly keys: KeysService;
  readonly gateways: GatewaysService;
  readonly rateLimiter: RateLimiter;
  /** Closes every client, in reverse order of creation. */
  close(): Promise<void>;
}

/** The composition root: connects to PostgreSQL, Redis and Temporal and wires the services. */
export async function createDeps(config: Config, logger: Logger, temporalAddress: string): Promise<Deps> {
  const orm = await openOrm(config.databaseUrl);
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 3, lazyConnect: true });
  redis.on("error", (error) => logger.warn({ err: error }, "redis connection error"));
  let connection: Connection | undefined;
  try {
    await redis.connect();
    connection = await Connection.connect({ address: temporalAddress });
  } catch (error) {
    redis.disconnect();
    await orm.close();
    throw error;
  }
  const temporalConnection = connection;
  const keys = new KeysService(orm.em);
  return {
    config,
    logger,
    orm,
    redis,
    temporalAddress,
    temporal: new Client({ connection: temporalConnection, namespace: config.temporalNamespace }),
    temporalConnection,
    keys,
    gateways: new GatewaysService(orm.em, keys),
    rateLimiter: new RateLimiter(redis, config.rateLimit.windowSeconds),
    async close() {
      await temporalConnection.close().catch((error: unknown) => logger.warn({ err: error }, "closing Temporal"));
      await redis.quit().catch(() => redis.disconnect());
      await orm.close();
    },
  };
}
