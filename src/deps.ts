import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { MikroORM } from "@mikro-orm/postgresql";
import { Client } from "@temporalio/client";
import { NativeConnection } from "@temporalio/worker";
import { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Config } from "./config.js";
import { openOrm } from "./db/orm.js";
import { DeviceHub, Presence, pushCommand, startDeviceControl } from "./modules/devices/index.js";
import { EventRepository, EventsService } from "./modules/events/index.js";
import { FleetWatch, GatewayRegistry, GatewayRepository } from "./modules/gateways/index.js";
import { InboundRepository, InboundService } from "./modules/inbound/index.js";
import { KeyRepository, KeysService } from "./modules/keys/index.js";
import {
  Backlog,
  GatewayPicker,
  MessageLifecycle,
  MessageRepository,
  MessagesService,
} from "./modules/messages/index.js";
import { OneTimePasswords, OtpRepository } from "./modules/otp/index.js";
import { AuthFailureLimiter, RateLimiter } from "./modules/rate-limits/index.js";
import { WebhookDispatcher, WebhookRepository } from "./modules/webhooks/index.js";
import { ClientLoad } from "./shared/client-load.js";
import { randomToken } from "./shared/ids.js";
import { Metrics } from "./shared/metrics.js";
import { SecretBox } from "./shared/secret-box.js";
import { createMessageWorkflows } from "./temporal/message-workflows.js";
import { createOtpWorkflows } from "./temporal/otp-workflows.js";
import { createWebhookWorkflows } from "./temporal/webhook-workflows.js";
import { FirstSteps } from "./temporal/workflow-calls.js";
import { type Tracing, temporalTracing } from "./tracing.js";

/** Everything the server and the worker share, built once. */
export interface Deps {
  readonly config: Config;
  readonly logger: Logger;
  readonly orm: MikroORM;
  readonly redis: Redis;
  readonly temporalAddress: string;
  readonly temporal: Client;
  /**
   * The client's connection, shared with this process's worker on the shared task queue: a start
   * from here then runs its first workflow task in this process at once (eager start).
   */
  readonly temporalConnection: NativeConnection;
  /** Client requests (not device streams) this process is serving, and whether clients send hard; app.ts counts them. */
  readonly load: ClientLoad;
  /** Notices that message workflows took their first step in this process's worker. */
  readonly firstSteps: FirstSteps;
  /** This process's own task queue: pushes to the devices connected here run on it. */
  readonly instanceTaskQueue: string;
  readonly keys: KeysService;
  readonly gateways: GatewayRegistry;
  readonly fleet: FleetWatch;
  readonly rateLimiter: RateLimiter;
  readonly authFailures: AuthFailureLimiter;
  readonly events: EventsService;
  readonly messages: MessagesService;
  readonly lifecycle: MessageLifecycle;
  /** Every statement on messages and their attempts. */
  readonly messageRepository: MessageRepository;
  /** The Prometheus metrics of this process, domain and runtime. */
  readonly metrics: Metrics;
  /** OpenTelemetry tracing, when OTEL_EXPORTER_OTLP_ENDPOINT is set. */
  readonly tracing: Tracing | undefined;
  readonly hub: DeviceHub;
  readonly inbound: InboundService;
  readonly webhooks: WebhookDispatcher;
  readonly otp: OneTimePasswords;
  /** Closes every client, in reverse order of creation. */
  close(): Promise<void>;
}

/**
 * The secret key base: SECRET_KEY_BASE, or one kept in DATA_DIR (created on first start). Several
 * instances must share it, so production sets SECRET_KEY_BASE.
 */
function secretKeyBase(config: Config, logger: Logger): string {
  if (config.secretKeyBase !== undefined) return config.secretKeyBase;
  const file = join(config.dataDir, "secret_key_base");
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    mkdirSync(config.dataDir, { recursive: true });
    const created = randomBytes(48).toString("hex");
    writeFileSync(file, created, { mode: 0o600, flag: "wx" });
    logger.warn({ file }, "SECRET_KEY_BASE is not set: created one in DATA_DIR; set it in production");
    return created;
  }
}

/** The composition root: connects to PostgreSQL, Redis and Temporal and wires the services. */
export async function createDeps(
  config: Config,
  logger: Logger,
  temporalAddress: string,
  tracing?: Tracing,
): Promise<Deps> {
  const orm = await openOrm(config.databaseUrl);
  const redis = new Redis(config.redisUrl, {
    maxRetriesPerRequest: 3,
    lazyConnect: true,
    // Commands given in the same turn of the event loop (the rate limits of requests that arrived
    // together, say) leave in one write and come back in one read.
    enableAutoPipelining: true,
  });
  redis.on("error", (error) => logger.warn({ err: error }, "redis connection error"));
  let connection: NativeConnection | undefined;
  try {
    await redis.connect();
    connection = await NativeConnection.connect({ address: temporalAddress });
  } catch (error) {
    redis.disconnect();
    await orm.close();
    throw error;
  }
  const temporalConnection = connection;
  const temporal = new Client({
    connection: temporalConnection,
    namespace: config.temporalNamespace,
    // Traced: workflow starts and signals carry the caller's trace context in their headers.
    ...(tracing === undefined
      ? {}
      : { interceptors: { workflow: [new (await temporalTracing()).OpenTelemetryWorkflowClientInterceptor()] } }),
  });
  const instanceTaskQueue = `${config.temporalTaskQueue}-device-${randomToken(12)}`;
  const keys = new KeysService(new KeyRepository(orm.em));
  const rateLimiter = new RateLimiter(redis, config.rateLimit.windowSeconds, logger);
  const events = new EventsService(new EventRepository(orm.em));
  const gateways = new GatewayRegistry(new GatewayRepository(orm.em), keys, events);
  const presence = new Presence(redis, config.devices.idleTimeoutSeconds);
  const load = new ClientLoad();
  const firstSteps = new FirstSteps();
  const repository = new MessageRepository(orm.em);
  // Read when Prometheus scrapes: the pipeline and the gateways from the database, the devices here.
  const metrics: Metrics = new Metrics({
    pipeline: () => repository.inFlight(),
    gateways: async () =>
      (await gateways.list()).map((gateway) => ({
        deviceId: gateway.deviceId,
        online: gateway.status === "online",
        active: gateway.active,
        lastHeartbeatSeconds: gateway.lastHeartbeatAt == null ? null : gateway.lastHeartbeatAt.getTime() / 1000,
      })),
    connectedDevices: (): Record<"stream" | "cable", number> => hub.connectedByChannel(),
  });
  const workflows = createMessageWorkflows(temporal, {
    taskQueue: config.temporalTaskQueue,
    policy: config.messages,
    startConcurrency: config.workflowStartConcurrency,
    // The backlog limit is counted every half second, so a few more than it may be accepted in
    // between: the starter holds twice as many, and drops (for the sweeper) only past that.
    startCapacity: 2 * config.backlog.total + 100,
    // Clients sending hard: starts make way for accepting, unless sends are being refused for a full
    // backlog (then only draining it lets them in again).
    busy: () => load.busy && !backlog.refusing(),
    firstSteps,
    logger,
    onStartFailure: () => metrics.workflowStartFailed(),
    // The hub and the lifecycle are made below; this runs only once messages are accepted.
    dispatchFirst: (messageId) => lifecycle.dispatchFirst(messageId, (command) => pushCommand(hub, messages, command)),
  });
  const backlog = new Backlog(repository, config.backlog, logger);
  const picker = new GatewayPicker(repository, redis, presence, {
    sendsPerMinute: config.messages.gatewaySendsPerMinute,
    failureCooldownSeconds: config.messages.failedGatewayCooldownSeconds,
  });
  const lifecycle = new MessageLifecycle(repository, picker, events, gateways, metrics);
  const secret = secretKeyBase(config, logger);
  const messages = new MessagesService(
    gateways,
    repository,
    workflows,
    { defaultCountryCode: config.defaultCountryCode, defaultValiditySeconds: config.messages.defaultValiditySeconds },
    logger,
    new SecretBox(secret, "message texts v1"),
    lifecycle,
    backlog,
    metrics,
  );
  // The console's live fleet: one read per second per instance while anyone watches.
  const fleet = new FleetWatch(
    {
      gateways: () => gateways.list(),
      channels: (ids) => presence.channels(ids),
      inFlight: () => repository.inFlightByGateway(),
      sendsPerMinute: config.messages.gatewaySendsPerMinute,
    },
    logger,
  );
  const hub = new DeviceHub({ presence, gateways, messages, logger, taskQueue: instanceTaskQueue, ...config.devices });
  const inbound = new InboundService(new InboundRepository(orm.em), gateways, events, config.defaultCountryCode);
  hub.onReceived((gatewayId, sms) => inbound.receive(gatewayId, sms));
  // Redis back after an outage (perhaps empty): the devices connected here are claimed again at once.
  redis.on("ready", () => {
    hub.reclaimPresence().catch((error: unknown) => logger.warn({ err: error }, "reclaiming presence failed"));
  });
  const stopDeviceControl = await startDeviceControl({ redis, hub, keys, gateways, logger, sweepMs: 10_000 });
  const webhooks = new WebhookDispatcher(
    new WebhookRepository(orm.em),
    new SecretBox(secret),
    events,
    config.webhooks,
    logger,
    metrics,
  );
  if (tracing !== undefined) webhooks.followTraces((messageId) => repository.traceContext(messageId));
  webhooks.start(createWebhookWorkflows(temporal, config));
  const otp = new OneTimePasswords(
    new OtpRepository(orm.em),
    messages,
    lifecycle,
    secret,
    { ...config.otp, defaultCountryCode: config.defaultCountryCode },
    logger,
    metrics,
  );
  otp.start(createOtpWorkflows(temporal, config.temporalTaskQueue));
  return {
    config,
    logger,
    orm,
    redis,
    temporalAddress,
    temporal,
    temporalConnection,
    load,
    firstSteps,
    instanceTaskQueue,
    keys,
    gateways,
    fleet,
    rateLimiter,
    authFailures: new AuthFailureLimiter(rateLimiter, config.rateLimit.authFailuresPerMinute, 60),
    events,
    messages,
    lifecycle,
    messageRepository: repository,
    metrics,
    tracing,
    hub,
    inbound,
    webhooks,
    otp,
    async close() {
      backlog.stop();
      await stopDeviceControl();
      await temporalConnection.close().catch((error: unknown) => logger.warn({ err: error }, "closing Temporal"));
      await redis.quit().catch(() => redis.disconnect());
      await orm.close();
    },
  };
}
