import type { Worker } from "@temporalio/worker";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { buildApp } from "./app.js";
import type { Config } from "./config.js";
import { ensureDatabase, migrate } from "./db/orm.js";
import { createDeps, type Deps } from "./deps.js";
import { startBackends } from "./embedded/backends.js";
import { createActionCable } from "./http/action-cable.js";
import { createListener } from "./http/listener.js";
import { DeviceGrpcDoor, takesDeviceStream } from "./rpc/device-grpc-door.js";
import { devServerSetup, ensureLocalTemporal, type LocalTemporal } from "./temporal/dev-server.js";
import { installTemporalRuntime } from "./temporal/runtime.js";
import { ensureSchedules } from "./temporal/schedules.js";
import { ensureSearchAttributes, untilSearchAttributesUsable } from "./temporal/search-attributes.js";
import { createDeviceWorker, createWebhookWorker, createWorker } from "./temporal/worker.js";
import { workflowBundlePath } from "./temporal/workflow-bundle.js";
import { startTracing } from "./tracing.js";

/** What `serve` runs: the API, the Temporal worker, or both. */
export interface ServeOptions {
  readonly api: boolean;
  readonly worker: boolean;
  /** Create or update the maintenance schedules (on by default with the worker). */
  readonly schedules?: boolean;
  /** Workflow code bundled ahead of time (tests); bundled at start when absent. */
  readonly workflowBundle?: { code: string };
}

/** A running server; `stop` drains it and releases everything it holds. */
export interface Running {
  readonly deps: Deps;
  readonly app: FastifyInstance | undefined;
  /** Where the API listens, e.g. `http://127.0.0.1:3000`. */
  readonly url: string | undefined;
  stop(): Promise<void>;
}

/** Resolves Temporal's address, starting a local dev server when none is configured. */
async function temporalFor(config: Config, logger: Logger): Promise<LocalTemporal & { embedded: boolean }> {
  if (config.temporalAddress !== undefined)
    return { address: config.temporalAddress, embedded: false, stop: async () => undefined };
  const local = await ensureLocalTemporal({
    ...devServerSetup(config),
    port: config.temporalDev.port,
    uiPort: config.temporalDev.uiPort,
    dataDir: config.dataDir,
    namespace: config.temporalNamespace,
    logger,
  });
  return { ...local, embedded: true };
}

/**
 * Sets up what needs Temporal once it answers, trying again (every few seconds) while the set-up
 * fails, then starts at once the workflows of the messages stored meanwhile (the sweeper would
 * within 30 s).
 */
async function temporalWhenItComes(
  deps: Deps,
  logger: Logger,
  setUp: () => Promise<void>,
  stopping: AbortSignal,
): Promise<void> {
  const ready = deps.temporalLink.ready();
  // A server stopped before Temporal came stops waiting for it.
  const stopped = new Promise<undefined>((resolve) =>
    stopping.addEventListener("abort", () => resolve(undefined), { once: true }),
  );
  if ((await Promise.race([ready, stopped])) === undefined) return;
  for (;;) {
    try {
      await setUp();
      break;
    } catch (error) {
      if (stopping.aborted) return;
      logger.warn({ err: error }, "setting up Temporal failed; trying again");
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
  if (stopping.aborted) return;
  const started = await deps.messages.startMissingWorkflows(0).catch((error: unknown) => {
    logger.warn({ err: error }, "starting the workflows of messages stored without Temporal failed; the sweeper will");
    return 0;
  });
  logger.info({ started }, "Temporal is set up; the messages stored while it was away are moving");
}

/**
 * Starts everything `smsgw serve` runs: database (created and migrated), Temporal (search attributes
 * and schedules), the worker and the API on one port.
 */
export async function serve(configured: Config, logger: Logger, options: ServeOptions): Promise<Running> {
  await installTemporalRuntime(logger);
  // PostgreSQL and Redis first (embedded ones when none is configured), then Temporal.
  const backends = await startBackends(configured, logger);
  const { config } = backends;
  let temporal: (LocalTemporal & { embedded: boolean }) | undefined;
  let deps: Deps;
  let applied: string[];
  let tracing: Awaited<ReturnType<typeof startTracing>>;
  try {
    temporal = await temporalFor(config, logger);
    await ensureDatabase(config.databaseUrl);
    const embedded = [...backends.embedded, ...(temporal.embedded ? (["temporal"] as const) : [])];
    logger.info(
      {
        database: backends.embedded.includes("database") ? `embedded (${config.embedded.postgresDir})` : "configured",
        redis: backends.embedded.includes("redis") ? "embedded (in this process; one instance only)" : "configured",
        temporal: temporal.embedded ? `dev server (${temporal.address})` : `configured (${temporal.address})`,
      },
      "backends",
    );
    tracing = await startTracing(config.tracing);
    if (tracing !== undefined) logger.info({ endpoint: config.tracing?.endpoint }, "tracing on (OTLP)");
    deps = await createDeps(config, logger, temporal.address, { tracing, worker: options.worker, embedded });
    applied = await migrate(deps.orm);
  } catch (error) {
    // Nothing is left running by a start that failed: an embedded database runs in a process of its own.
    await temporal?.stop();
    await backends.stop();
    throw error;
  }
  if (applied.length > 0) logger.info({ applied }, "migrations applied");

  const workers: { name: string; worker: Worker; running: Promise<void> }[] = [];
  /** Makes and runs a worker, once (a set-up tried again after a failure keeps those it made). */
  const run = async (name: string, make: () => Promise<Worker>) => {
    if (workers.some((worker) => worker.name === name)) return;
    const worker = await make();
    const running = worker.run();
    running.catch((error: unknown) => logger.fatal({ err: error, worker: name }, "a Temporal worker stopped"));
    workers.push({ name, worker, running });
  };
  const stopping = new AbortController();
  /** What needs Temporal: its search attributes, the schedules, and the workers. */
  const onTemporal = async () => {
    await ensureSearchAttributes(deps.temporalLink, config.temporalNamespace);
    await untilSearchAttributesUsable(deps.temporalLink, config.temporalNamespace);
    if (stopping.signal.aborted) return;
    if (options.worker) {
      if (options.schedules ?? true) await ensureSchedules(deps.temporal, config);
      // Tests hand in code bundled once; a server uses (or builds, in a child process) the cached bundle.
      const workflowBundle = options.workflowBundle ?? {
        codePath: await workflowBundlePath(config.dataDir, { tracing: tracing !== undefined }),
      };
      await run("shared", () => createWorker(deps, { workflowBundle }));
      await run("webhooks", () => createWebhookWorker(deps));
    }
    // Devices connect to the API: the instance serving it pushes their commands.
    if (options.api) await run("devices", () => createDeviceWorker(deps));
  };
  // Temporal that answers at start is set up before the API listens, as before; one that does not is
  // set up when it comes, while the API serves (sends are stored, and started then).
  let lateTemporal: Promise<void> | undefined;
  if (deps.temporalLink.connected) await onTemporal();
  else lateTemporal = temporalWhenItComes(deps, logger, onTemporal, stopping.signal);

  let app: FastifyInstance | undefined;
  let url: string | undefined;
  const listener = createListener(config, logger);
  const cable = createActionCable(deps);
  listener.onWebSocket("/cable", (request, socket, head) => cable.upgrade(request, socket, head));
  // Phones' gRPC streams are served straight on HTTP/2 (a phone holds one for as long as it is online).
  const deviceDoor = new DeviceGrpcDoor({ ...deps, readMaxBytes: config.bodyLimitBytes });
  listener.takeStreams((stream, headers) => {
    if (!takesDeviceStream(headers)) return false;
    deviceDoor.serve(stream, headers);
    return true;
  });
  if (options.api) {
    app = await buildApp(deps, { serverFactory: listener.serverFactory });
    url = await app.listen({ port: config.port, host: config.host });
    logger.info({ url, tls: config.tls !== undefined }, "smsgw is listening (HTTP/1.1 and HTTP/2 on one port)");
  }

  return {
    deps,
    app,
    url,
    async stop() {
      stopping.abort();
      // Devices are told to reconnect elsewhere; then requests finish and the workers stop after
      // their tasks.
      deps.connections.closeAll("shutdown");
      deps.fleet.close();
      // Give the channels a moment to tell their devices to reconnect elsewhere.
      await new Promise((resolve) => setTimeout(resolve, 50));
      cable.close();
      await Promise.all([app?.close(), listener.closeSessions(config.shutdownTimeoutMs)]);
      // Set up for a Temporal that came late: finished (or given up) before the workers are stopped.
      await lateTemporal;
      for (const worker of workers) if (worker.worker.getState() === "RUNNING") worker.worker.shutdown();
      // The workers share the process's Temporal connection, which deps.close() closes.
      for (const worker of workers) await worker.running.catch(() => undefined);
      await deps.close();
      await temporal.stop();
      await backends.stop();
      await tracing?.shutdown();
    },
  };
}
