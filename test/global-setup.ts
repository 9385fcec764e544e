import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Connection } from "@temporalio/client";
import { bundleWorkflowCode } from "@temporalio/worker";
import { Redis } from "ioredis";
import pg from "pg";
import { type Logger, pino } from "pino";
import type { TestProject } from "vitest/node";
import { loadConfig } from "../src/config.js";
import { ensureDatabase, migrate, openOrm } from "../src/db/orm.js";
import { startEmbeddedPostgres } from "../src/embedded/postgres.js";
import { startEmbeddedRedis } from "../src/embedded/redis.js";
import { freePort } from "../src/shared/ports.js";
import { devServerSetup, ensureLocalTemporal, type LocalTemporal } from "../src/temporal/dev-server.js";
import { ensureSearchAttributes } from "../src/temporal/search-attributes.js";
import { workflowsPath } from "../src/temporal/worker.js";

declare module "vitest" {
  export interface ProvidedContext {
    databaseUrl: string;
    redisUrl: string;
    temporalAddress: string;
    workflowBundleCode: string;
  }
}

let databaseUrl = process.env.TEST_DATABASE_URL ?? "";
let redisUrl = process.env.TEST_REDIS_URL ?? "";

/** A clean test database with every migration applied. */
async function freshDatabase(): Promise<void> {
  await ensureDatabase(databaseUrl);
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  await client.query("drop schema public cascade; create schema public;");
  await client.end();
  const orm = await openOrm(databaseUrl);
  await migrate(orm);
  await orm.close();
}

/** An empty Redis database: rate-limit counters are keyed by key ids, which restart with the database. */
async function freshRedis(): Promise<void> {
  const redis = new Redis(redisUrl);
  await redis.flushdb();
  await redis.quit();
}

let temporal: LocalTemporal | undefined;

/**
 * Holds, for the whole run, the lock that says this run owns the test database and Redis database:
 * a second run started meanwhile (another file run by hand beside the full suite) would recreate
 * them under the first and fail it in strange ways (its keys gone: 401s; its messages gone:
 * timeouts). It is refused at once instead. The lock ends with the connection.
 */
async function ownTestServices(): Promise<pg.Client> {
  const url = new URL(databaseUrl);
  url.pathname = "/postgres";
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  const { rows } = await client.query<{ owned: boolean }>("select pg_try_advisory_lock(hashtext($1)) as owned", [
    `smsgw test run: ${databaseUrl} ${redisUrl}`,
  ]);
  if (rows[0]?.owned !== true) {
    await client.end();
    throw new Error(
      `another test run is using ${databaseUrl} and ${redisUrl}: wait for it to end, or give this one ` +
        "its own with TEST_DATABASE_URL and TEST_REDIS_URL",
    );
  }
  return client;
}

/**
 * The run's own PostgreSQL and Redis when TEST_DATABASE_URL and TEST_REDIS_URL are not given: the
 * embedded ones `npm start` uses on a machine without them, in a folder of their own that ends with
 * the run, on free ports.
 */
async function ownBackends(logger: Logger): Promise<() => Promise<void>> {
  const stops: (() => Promise<void>)[] = [];
  const dir = mkdtempSync(join(tmpdir(), "smsgw-test-"));
  chmodSync(dir, 0o755);
  if (databaseUrl === "") {
    const postgres = await startEmbeddedPostgres({
      dir: join(dir, "pg"),
      port: await freePort(),
      database: "smsgw_test",
      durable: false,
      logger,
    });
    databaseUrl = postgres.url;
    stops.push(() => postgres.stop());
  }
  if (redisUrl === "") {
    const redis = await startEmbeddedRedis({ stateFile: join(dir, "redis.json"), logger });
    redisUrl = redis.url.replace(/\/0$/, "/15");
    stops.push(() => redis.stop());
  }
  return async () => {
    for (const stop of stops.reverse()) await stop();
    rmSync(dir, { recursive: true, force: true });
  };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const logger = pino({ level: "warn" });
  // The build in dist/ (with the console, which the browser tests load), made here when missing or
  // stale: servers run as `npm start` runs them (the chaos test) start from it.
  execFileSync(process.execPath, ["scripts/build-server.mjs"], { stdio: "inherit" });
  const stopBackends = await ownBackends(logger);
  const owner = await ownTestServices();
  await freshDatabase();
  await freshRedis();
  temporal = process.env.TEMPORAL_ADDRESS
    ? { address: process.env.TEMPORAL_ADDRESS, stop: async () => undefined }
    : await ensureLocalTemporal({
        ...devServerSetup(loadConfig()),
        port: Number(process.env.TEST_TEMPORAL_PORT ?? 7266),
        uiPort: undefined,
        dataDir: undefined,
        namespace: "default",
        logger,
      });
  const connection = await Connection.connect({ address: temporal.address });
  await ensureSearchAttributes(connection, "default");
  await connection.close();
  const bundle = await bundleWorkflowCode({ workflowsPath, logger: { ...silentLogger } });
  project.provide("databaseUrl", databaseUrl);
  project.provide("redisUrl", redisUrl);
  project.provide("temporalAddress", temporal.address);
  project.provide("workflowBundleCode", bundle.code);
  return async () => {
    await temporal?.stop();
    await owner.end();
    await stopBackends();
  };
}

const noop = () => undefined;
const silentLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, log: noop };
