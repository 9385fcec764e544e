import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "./config.js";
import { ensureDatabase, migrate, openOrm } from "./db/orm.js";
import { commandBackends } from "./embedded/backends.js";
import { EmbeddedPostgresError } from "./embedded/postgres.js";
import { createLogger } from "./logger.js";
import { publishDeviceControl } from "./modules/devices/index.js";
import { GatewayRegistry, GatewayRepository } from "./modules/gateways/index.js";
import { type KeyRecord, KeyRepository, type KeyScope, KeysService } from "./modules/keys/index.js";
import { serve } from "./serve.js";
import { DomainError } from "./shared/errors.js";
import { openRedis } from "./shared/redis.js";

const usage = `smsgw: a self-hosted SMS gateway

Usage:
  smsgw serve [--api-only | --worker-only]   run the API (one port: gRPC, Connect, REST) and the Temporal worker
  smsgw migrate                              create the database if missing and apply migrations
  smsgw seed                                 create the first admin key and print it (only when none exists)
  smsgw keys create --kind client|admin|gateway|registration --name NAME [--device-id ID]
                                             create a key and print it alone on stdout (shown once)
  smsgw keys create --kind account --name NAME
                                             create an SMSGate account (a client key signed in with
                                             Basic login:password on /3rdparty/v1) and print
                                             "login password" on stdout (shown once)
  smsgw keys import --kind gateway (--device-id ID --sha256 HEX | --file FILE)
                                             bring the original system's gateway keys along
  smsgw keys list                            list keys (never the keys themselves)
  smsgw keys revoke ID                       revoke a key at once
  smsgw simulate-gateway [--url URL] [--count N] [--key gw_live_…]… [--success-rate 0.95]
                         [--latency-ms 500] [--drop-probability 0] [--duration-seconds S] [--quiet]
                                             connect simulated phones over the real stream

Configuration is read from the environment; see docs/configuration.md.`;

/**
 * Runs `work` with a migrated database (created if missing) and the key and gateway services, then
 * closes it. `work` also gets the names of the migrations this call applied.
 */
async function withServices<T>(
  work: (keys: KeysService, gateways: GatewayRegistry, applied: string[], redisUrl: string | undefined) => Promise<T>,
): Promise<T> {
  const config = loadConfig();
  // The embedded database, when DATABASE_URL is unset: the server's, or started for this command.
  const backends = await commandBackends(config, createLogger("warn", "auto"));
  try {
    await ensureDatabase(backends.databaseUrl);
    const orm = await openOrm(backends.databaseUrl);
    try {
      const applied = await migrate(orm);
      const keys = new KeysService(new KeyRepository(orm.em));
      return await work(keys, new GatewayRegistry(new GatewayRepository(orm.em), keys), applied, backends.redisUrl);
    } finally {
      await orm.close();
    }
  } finally {
    await backends.stop();
  }
}

function formatKey(key: KeyRecord): string {
  const date = (value: Date | null) => (value === null ? "-" : value.toISOString());
  return [
    key.id,
    key.scope,
    key.name,
    `…${key.hint}`,
    key.gatewayId ?? "-",
    date(key.createdAt),
    date(key.lastUsedAt),
    date(key.revokedAt),
  ].join("\t");
}

async function keysCommand(args: string[]): Promise<void> {
  const [action, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      kind: { type: "string" },
      name: { type: "string" },
      "device-id": { type: "string" },
      sha256: { type: "string" },
      file: { type: "string" },
    },
  });
  if (action === "create" && values.kind === "account") {
    // SMSGate's client libraries sign in with a login and password: an account is a client key with both.
    const opened = await withServices((keys) => keys.createAccount(values.name ?? "SMSGate account"));
    process.stdout.write(`${opened.login} ${opened.password}\n`);
  } else if (action === "create") {
    const kind = values.kind as KeyScope | undefined;
    if (kind !== "client" && kind !== "admin" && kind !== "gateway" && kind !== "registration")
      throw new UsageError("--kind must be client, admin, gateway, registration or account");
    if (kind === "gateway" && values["device-id"] === undefined)
      throw new UsageError("a gateway key needs --device-id");
    const key = await withServices(async (keys, gateways) => {
      const gateway = kind === "gateway" ? await gateways.findByDeviceId(values["device-id"] ?? "") : undefined;
      const name = values.name ?? gateway?.name ?? kind;
      return (await keys.create({ scope: kind, name, ...(gateway ? { gatewayId: gateway.id } : {}) })).key;
    });
    process.stdout.write(`${key}\n`);
  } else if (action === "import") {
    // The original system's gateway keys, by their SHA-256 digests: those phones authenticate unchanged.
    if (values.kind !== "gateway") throw new UsageError("keys import takes --kind gateway");
    const phones: { deviceId: string; sha256: string }[] = [];
    if (values.file !== undefined) {
      for (const [n, line] of readFileSync(values.file, "utf8").split("\n").entries()) {
        const text = line.trim();
        if (text === "" || text.startsWith("#")) continue;
        const [deviceId, sha256, extra] = text.split(/[\s,]+/);
        if (deviceId === undefined || sha256 === undefined || extra !== undefined)
          throw new UsageError(`${values.file}:${n + 1}: expected "DEVICE_ID SHA256"`);
        phones.push({ deviceId, sha256 });
      }
    } else if (values["device-id"] !== undefined && values.sha256 !== undefined) {
      phones.push({ deviceId: values["device-id"], sha256: values.sha256 });
    } else {
      throw new UsageError("keys import needs --device-id ID --sha256 HEX, or --file FILE");
    }
    await withServices(async (_keys, gateways) => {
      for (const phone of phones) {
        const added = await gateways.importPhone({
          ...phone,
          ...(values.name === undefined ? {} : { name: values.name }),
        });
        process.stdout.write(`${phone.deviceId}\t${added ? "imported" : "already imported"}\n`);
      }
    });
  } else if (action === "list") {
    const list = await withServices((keys) => keys.list());
    process.stdout.write(`id\tscope\tname\tkey\tgateway\tcreated\tlast used\trevoked\n`);
    for (const key of list) process.stdout.write(`${formatKey(key)}\n`);
  } else if (action === "revoke") {
    const id = Number(positionals[0]);
    if (!Number.isInteger(id) || id <= 0) throw new UsageError("keys revoke takes a key id (see keys list)");
    const record = await withServices(async (keys, _gateways, _applied, redisUrl) => {
      // No Redis to reach: an embedded one lives in its server, and with no server running no
      // connection is open to cut.
      if (redisUrl === undefined) return await keys.revoke(id);
      // Every running instance hears of it through Redis and cuts the key's live connections.
      const redis = openRedis(redisUrl, { maxRetriesPerRequest: 1 });
      keys.onRevoked((keyId) => publishDeviceControl(redis, { type: "key_revoked", keyId }));
      try {
        return await keys.revoke(id);
      } finally {
        await redis.quit().catch(() => redis.disconnect());
      }
    });
    process.stderr.write(`revoked key ${record.id} (${record.scope}, ${record.name})\n`);
  } else {
    throw new UsageError(`unknown keys command: ${action ?? "(none)"}`);
  }
}

class UsageError extends Error {}

async function serveCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { "api-only": { type: "boolean" }, "worker-only": { type: "boolean" } },
  });
  if (values["api-only"] && values["worker-only"])
    throw new UsageError("--api-only and --worker-only exclude each other");
  const config = loadConfig();
  const logger = createLogger(config.logLevel, config.logFormat);
  const running = await serve(config, logger, { api: !values["worker-only"], worker: !values["api-only"] });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "draining and shutting down");
    const force = setTimeout(() => {
      logger.error("shutdown took too long; exiting");
      process.exit(1);
    }, config.shutdownTimeoutMs + 5000);
    force.unref();
    running.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "error while shutting down");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

/** Runs the command line. */
export async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  try {
    switch (command) {
      case "serve":
        return await serveCommand(args);
      case "migrate": {
        const applied = await withServices(async (_keys, _gateways, names) => names);
        for (const name of applied) process.stderr.write(`applied ${name}\n`);
        process.stderr.write("the database is up to date\n");
        return;
      }
      case "seed": {
        const key = await withServices(async (keys) =>
          (await keys.hasActiveAdminKey()) ? undefined : (await keys.create({ scope: "admin", name: "admin" })).key,
        );
        if (key === undefined)
          process.stderr.write(
            "an admin key already exists; create another with `smsgw keys create --kind admin --name NAME`\n",
          );
        else {
          process.stderr.write("Admin API key (save it now, it will not be shown again):\n");
          process.stdout.write(`${key}\n`);
        }
        return;
      }
      case "keys":
        return await keysCommand(args);
      case "simulate-gateway": {
        const { simulateGateway } = await import("./simulator/cli.js");
        return await simulateGateway(args, `http://127.0.0.1:${loadConfig().port}`);
      }
      case undefined:
      case "help":
      case "--help":
        process.stdout.write(`${usage}\n`);
        return;
      default:
        throw new UsageError(`unknown command: ${command}`);
    }
  } catch (error) {
    if (error instanceof UsageError) process.stderr.write(`smsgw: ${error.message}\n\n${usage}\n`);
    else if (error instanceof ConfigError || error instanceof DomainError || error instanceof EmbeddedPostgresError)
      process.stderr.write(`smsgw: ${error.message}\n`);
    else process.stderr.write(`smsgw: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  }
}
