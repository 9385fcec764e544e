import { createHmac, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { MikroORM } from "@mikro-orm/postgresql";
import { Client } from "@temporalio/client";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { ConnectedConfig } from "./config.js";
import { openOrm } from "./db/orm.js";
import type { EmbeddedBackend } from "./embedded/backends.js";
import { DeviceHub, LiveDevices, Presence, pushToConnected, startDeviceControl } from "./modules/devices/index.js";
import { EventRepository, EventsService } from "./modules/events/index.js";
import { FleetWatch, GatewayRegistry, GatewayRepository } from "./modules/gateways/index.js";
import { InboundRepository, InboundService } from "./modules/inbound/index.js";
import { AccessTokenRepository, AccessTokens, KeyRepository, KeysService } from "./modules/keys/index.js";
import {
  Backlog,
  GatewayPicker,
  MessageLifecycle,
  MessageRepository,
  MessagesService,
  type PushCommand,
} from "./modules/messages/index.js";
import { OneTimePasswords, OtpRepository } from "./modules/otp/index.js";
import { AuthFailureLimiter, RateLimiter } from "./modules/rate-limits/index.js";
import { WebhookDispatcher, WebhookRepository } from "./modules/webhooks/index.js";
import { ClientLoad } from "./shared/client-load.js";
import { randomToken } from "./shared/ids.js";
import { Metrics } from "./shared/metrics.js";
import { openRedis } from "./shared/redis.js";
import { SecretBox } from "./shared/secret-box.js";
import { TemporalLink } from "./temporal/link.js";
import { createMessageWorkflows } from "./temporal/message-workflows.js";
import { createOtpWorkflows } from "./temporal/otp-workflows.js";
import { createWebhookWorkflows } from "./temporal/webhook-workflows.js";
import { FirstSteps } from "./temporal/workflow-calls.js";
import { type Tracing, temporalTracing } from "./tracing.js";

/** Everything the server and the worker share, built once. */
export interface Deps {
  readonly config: ConnectedConfig;
  /** The backends this process runs for itself (DATABASE_URL, REDIS_URL or TEMPORAL_ADDRESS unset). */
  readonly embedded: readonly EmbeddedBackend[];
  readonly logger: Logger;
  readonly orm: MikroORM;
  readonly redis: Redis;
  readonly temporalAddress: string;
  readonly temporal: Client;
  /**
   * The client's connection, shared with this process's worker on the shared task queue: a start
   * from here then runs its first workflow task in this process at once (eager start). It may come
   * after the process (Temporal down at start): calls fail as UNAVAILABLE until it does.
   */
  readonly temporalLink: TemporalLink;
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
  /** The devices connected to this process, where commands are pushed. */
  readonly connections: LiveDevices;
  /** Hands a command to a phone connected to this process; false when it is not connected here. */
  pushHere(command: PushCommand): Promise<boolean>;
  readonly inbound: InboundService;
  readonly webhooks: WebhookDispatcher;
  /** Keeps webhook secrets (and SMSGate accounts' signing keys) encrypted. */
  readonly webhookSecrets: SecretBox;
  /** The signed tokens (JWTs) SMSGate's third-party API issues. */
  readonly accessTokens: AccessTokens;
  readonly otp: OneTimePasswords;
  /**
   * The key a phone running the SMSGate app signs the webhooks it posts to smsgw with: derived from
   * the server's secret and the device id, so that nothing is stored and every instance agrees.
   */
  readonly signingKeyOf: (deviceId: string) => string;
  /** Closes every client, in reverse order of creation. */
  close(): Promise<void>;
}

/**
 * The secret key base: SECRET_KEY_BASE, or one kept in DATA_DIR (created on first start). Several
 * instances must share it, so production sets SECRET_KEY_BASE.
 */
function secretKeyBase(config: ConnectedConfig, logger: Logger): string {
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

/**
 * Refuses a node of a Redis Cluster: smsgw's Lua scripts (the gateway pick, the rate limits) and
 * its transactions touch several keys at once, which a cluster refuses across hash slots
 * (`CROSSSLOT`). One Redis (with replicas) is what smsgw needs.
 */
async function refuseRedisCluster(redis: Redis): Promise<void> {
  const info = await redis.info("cluster");
  if (/^cluster_enabled:1\s*$/m.test(info)) {
    throw new Error(
      "REDIS_URL names a node of a Redis Cluster, which smsgw cannot use: its scripts and transactions " +
        "read and write several keys at once, which a cluster refuses across hash slots (CROSSSLOT). " +
        "Point REDIS_URL at one Redis server (a primary with replicas).",
    );
  }
}

/** The composition root: connects to PostgreSQL, Redis and Temporal and wires the services. */
export async function createDeps(
  config: ConnectedConfig,
  logger: Logger,
  temporalAddress: string,
  options: { tracing?: Tracing | undefined; worker: boolean; embedded?: readonly EmbeddedBackend[] },
): Promise<Deps> {
  const { tracing } = options;
  const orm = await openOrm(config.databaseUrl);
  const redis = openRedis(config.redisUrl, {
    maxRetriesPerRequest: 3,
    lazyConnect: true,
    // Commands given in the same turn of the event loop (the rate limits of requests that arrived
    // together, say) leave in one write and come back in one read.
    enableAutoPipelining: true,
  });
  redis.on("error", (error) => logger.warn({ err: error }, "redis connection error"));
  // A Redis that does not answer yet is connected to in the background (ioredis keeps trying), and
  // the server serves meanwhile as it does in a Redis outage. One that answers must not be a node of
  // a Redis Cluster (below).
  const answered = await redis.connect().then(
    () => true,
    (error: unknown) => {
      logger.warn({ err: error }, "Redis does not answer at start; serving without it until it does");
      return false;
    },
  );
  let link: TemporalLink | undefined;
  try {
    if (answered) await refuseRedisCluster(redis);
    // A Redis that comes later is checked when it does (it cannot stop a server that runs: it is told).
    redis.on("ready", () => {
      refuseRedisCluster(redis).catch((error: unknown) =>
        logger.fatal({ err: error }, "the Redis smsgw reached cannot serve it"),
      );
    });
    // Like Redis, Temporal may come later: the link keeps trying, and the server serves meanwhile.
    link = await TemporalLink.open(temporalAddress, logger);
  } catch (error) {
    redis.disconnect();
    await orm.close();
    throw error;
  }
  const temporalLink = link;
  const temporal = new Client({
    connection: temporalLink,
    namespace: config.temporalNamespace,
    // Traced: workflow starts and signals carry the caller's trace context in their headers.
    ...(tracing === undefined
      ? {}
      : { interceptors: { workflow: [new (await temporalTracing()).OpenTelemetryWorkflowClientInterceptor()] } }),
  });
  const instanceTaskQueue = `${config.temporalTaskQueue}-device-${randomToken(12)}`;
  const secret = secretKeyBase(config, logger);
  // Built in dependency order: each object gets all it needs when it is made.
  const keys = new KeysService(new KeyRepository(orm.em));
  const rateLimiter = new RateLimiter(redis, config.rateLimit.windowSeconds, logger);
  const events = new EventsService(new EventRepository(orm.em));
  const gateways = new GatewayRegistry(new GatewayRepository(orm.em), keys, events);
  const presence = new Presence(redis, config.devices.idleTimeoutSeconds);
  const connections = new LiveDevices();
  const load = new ClientLoad();
  const firstSteps = new FirstSteps(options.worker);
  const repository = new MessageRepository(orm.em);
  // Read when Prometheus scrapes: the pipeline and the gateways from the database, the devices here.
  const metrics = new Metrics({
    pipeline: () => repository.inFlight(),
    gateways: async () =>
      (await gateways.list()).map((gateway) => ({
        deviceId: gateway.deviceId,
        online: gateway.status === "online",
        active: gateway.active,
        lastHeartbeatSeconds: gateway.lastHeartbeatAt == null ? null : gateway.lastHeartbeatAt.getTime() / 1000,
      })),
    connectedDevices: () => connections.connectedByChannel(),
  });
  const backlog = new Backlog(repository, config.backlog, logger);
  const picker = new GatewayPicker(repository, redis, presence, {
    sendsPerMinute: config.messages.gatewaySendsPerMinute,
    failureCooldownSeconds: config.messages.failedGatewayCooldownSeconds,
    localTaskQueue: instanceTaskQueue,
  });
  const textBox = new SecretBox(secret, "message texts v1");
  const lifecycle = new MessageLifecycle(
    repository,
    picker,
    events,
    metrics,
    textBox,
    config.messages.dispatchTimeoutMs,
  );
  /** Hands a command to a phone connected to this process (the first dispatch and the device activity). */
  const pushHere = (command: PushCommand) => pushToConnected(connections, lifecycle, command);
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
    dispatchFirst: (messageId) => lifecycle.dispatchFirst(messageId, pushHere),
  });
  const messages = new MessagesService(
    gateways,
    repository,
    workflows,
    { defaultCountryCode: config.defaultCountryCode, defaultValiditySeconds: config.messages.defaultValiditySeconds },
    logger,
    textBox,
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
  const inbound = new InboundService(new InboundRepository(orm.em), gateways, events, config.defaultCountryCode);
  const hub = new DeviceHub({
    connections,
    presence,
    gateways,
    messages,
    inbound: (gatewayId, sms) => inbound.receive(gatewayId, sms),
    logger,
    taskQueue: instanceTaskQueue,
    ...config.devices,
    ackRecorded: (seconds) => metrics.ackRecorded(seconds),
  });
  // Redis back after an outage (perhaps empty): the devices connected here are claimed again at once.
  redis.on("ready", () => {
    hub.reclaimPresence().catch((error: unknown) => logger.warn({ err: error }, "reclaiming presence failed"));
  });
  const stopDeviceControl = await startDeviceControl({
    redis,
    connections,
    keys,
    gateways,
    messages,
    logger,
    sweepMs: 10_000,
  });
  const webhookSecrets = new SecretBox(secret);
  const webhooks = new WebhookDispatcher(new WebhookRepository(orm.em), webhookSecrets, events, {
    options: config.webhooks,
    logger,
    metrics,
    workflows: createWebhookWorkflows(temporal, config),
    // Traced: the deliveries of a message's events join the trace the message was accepted in.
    ...(tracing === undefined ? {} : { traceOf: (messageId: string) => repository.traceContext(messageId) }),
    groupOf: (messageId: string) => repository.groupOf(messageId),
  });
  const otp = new OneTimePasswords(
    new OtpRepository(orm.em),
    messages,
    lifecycle,
    secret,
    { ...config.otp, defaultCountryCode: config.defaultCountryCode },
    logger,
    metrics,
    createOtpWorkflows(temporal, config.temporalTaskQueue),
  );
  return {
    config,
    embedded: options.embedded ?? [],
    logger,
    orm,
    redis,
    temporalAddress,
    temporal,
    temporalLink,
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
    connections,
    pushHere,
    metrics,
    tracing,
    hub,
    inbound,
    webhooks,
    webhookSecrets,
    accessTokens: new AccessTokens(
      new AccessTokenRepository(orm.em),
      createHmac("sha256", secret).update("smsgate access tokens v1").digest(),
      { ...config.smsGateTokens, issuer: "smsgw" },
    ),
    otp,
    signingKeyOf: (deviceId) =>
      createHmac("sha256", secret).update(`smsgate webhooks v1 ${deviceId}`).digest("hex").slice(0, 32),
    async close() {
      backlog.stop();
      await stopDeviceControl();
      await temporalLink.close().catch((error: unknown) => logger.warn({ err: error }, "closing Temporal"));
      await redis.quit().catch(() => redis.disconnect());
      await orm.close();
    },
  };
}
