import type { MikroORM } from "@mikro-orm/postgresql";
import { Client, Connection } from "@temporalio/client";
import { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Config } from "./config.js";
import { openOrm } from "./db/orm.js";
import { DeviceHub, Presence } from "./modules/devices/index.js";
import { EventsService } from "./modules/events/index.js";
import { GatewaysService } from "./modules/gateways/index.js";
import { KeysService } from "./modules/keys/index.js";
import { GatewayPicker, MessageLifecycle, MessagesService } from "./modules/messages/index.js";
import { RateLimiter } from "./modules/rate-limits/index.js";
import { randomToken } from "./shared/ids.js";
import { createMessageWorkflows } from "./temporal/message-workflows.js";

/** Everything the server and the worker share, built once. */
export interface Deps {
  readonly config: Config;
  readonly logger: Logger;
  readonly orm: MikroORM;
  readonly redis: Redis;
  readonly temporalAddress: string;
  readonly temporal: Client;
  readonly temporalConnection: Connection;
  /** This process's own task queue: pushes to the devices connected here run on it. */
  readonly instanceTaskQueue: string;
  readonly keys: KeysService;
  readonly gateways: GatewaysService;
  readonly rateLimiter: RateLimiter;
  readonly events: EventsService;
  readonly messages: MessagesService;
  readonly lifecycle: MessageLifecycle;
  readonly hub: DeviceHub;
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
  const temporal = new Client({ connection: temporalConnection, namespace: config.temporalNamespace });
  const instanceTaskQueue = `${config.temporalTaskQueue}-device-${randomToken(12)}`;
  const keys = new KeysService(orm.em);
  const gateways = new GatewaysService(orm.em, keys);
  const events = new EventsService(orm.em);
  const presence = new Presence(redis, config.devices.idleTimeoutSeconds);
  const workflows = createMessageWorkflows(
    temporal,
    { taskQueue: config.temporalTaskQueue, policy: config.messages },
    logger,
  );
  const messages = new MessagesService(
    orm.em,
    workflows,
    { defaultCountryCode: config.defaultCountryCode, defaultValiditySeconds: config.messages.defaultValiditySeconds },
    logger,
  );
  const picker = new GatewayPicker(orm.em, redis, presence, {
    sendsPerMinute: config.messages.gatewaySendsPerMinute,
    failureCooldownSeconds: config.messages.failedGatewayCooldownSeconds,
  });
  const hub = new DeviceHub({ presence, gateways, messages, logger, taskQueue: instanceTaskQueue, ...config.devices });
  return {
    config,
    logger,
    orm,
    redis,
    temporalAddress,
    temporal,
    temporalConnection,
    instanceTaskQueue,
    keys,
    gateways,
    rateLimiter: new RateLimiter(redis, config.rateLimit.windowSeconds),
    events,
    messages,
    lifecycle: new MessageLifecycle(orm.em, picker, events),
    hub,
    async close() {
      await temporalConnection.close().catch((error: unknown) => logger.warn({ err: error }, "closing Temporal"));
      await redis.quit().catch(() => redis.disconnect());
      await orm.close();
    },
  };
}
