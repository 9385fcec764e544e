import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { AddressInfo, Socket } from "node:net";
import { dirname } from "node:path";
import { Redis } from "ioredis";
import { createRedisCommandExecutor, RedisServerState, Resp2Server } from "js-redis-server/core";
import type { Logger } from "pino";

// A Redis-protocol server inside the smsgw process for a machine that has no Redis: js-redis-server,
// which runs every command and Lua script smsgw sends through ioredis (the rate limiter's scripts,
// presence, pub/sub, streams of device control) with the results of redis-server 7. It keeps its
// data in memory, as the machine's own Redis is set up to: what lives in Redis here is presence,
// counters and signals, all rebuilt after a restart. One instance only: a second smsgw cannot share
// it for long (it ends with the process that hosts it), so a farm needs a real Redis (REDIS_URL).

/** An embedded Redis: served by this process, or by another smsgw process on the same data folder. */
export interface EmbeddedRedis {
  readonly url: string;
  /** Whether another process serves it (a CLI command beside `smsgw serve`). */
  readonly shared: boolean;
  stop(): Promise<void>;
}

interface Served {
  readonly port: number;
  readonly password: string;
  readonly pid: number;
}

const urlOf = (served: Served) => `redis://:${encodeURIComponent(served.password)}@127.0.0.1:${served.port}/0`;

/** Whether a Redis answers PING at `url`, trying once. */
export async function redisAnswers(url: string): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on("error", () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** Finds the embedded Redis another live smsgw process serves on this data folder, if one does. */
export async function findEmbeddedRedis(stateFile: string): Promise<EmbeddedRedis | undefined> {
  if (!existsSync(stateFile)) return undefined;
  const served = JSON.parse(readFileSync(stateFile, "utf8")) as Served;
  if (served.pid === process.pid || !(await redisAnswers(urlOf(served)))) return undefined;
  return { url: urlOf(served), shared: true, stop: async () => undefined };
}

/**
 * Serves an embedded Redis on 127.0.0.1 (a free port, a password made for this run), and records
 * both in `stateFile` (readable by this user alone) for the CLI; or uses the one another smsgw
 * process serves.
 */
export async function startEmbeddedRedis(options: { stateFile: string; logger: Logger }): Promise<EmbeddedRedis> {
  const found = await findEmbeddedRedis(options.stateFile);
  if (found !== undefined) {
    options.logger.info("using the embedded Redis of the smsgw process already running");
    return found;
  }
  const password = randomBytes(18).toString("base64url");
  const state = new RedisServerState({ databaseCount: 16, requirepass: password });
  const server = new Resp2Server({
    server: state,
    executor: createRedisCommandExecutor({}),
    logger: { error: (error: unknown) => options.logger.warn({ err: error }, "embedded Redis") },
  });
  const sockets = new Set<Socket>();
  server.server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  // Loopback only, whatever HOST says: nothing but this machine's smsgw processes may reach it.
  await new Promise<void>((resolve, reject) => {
    server.server.once("error", reject);
    server.server.listen(0, "127.0.0.1", () => resolve());
  });
  const served: Served = { port: (server.server.address() as AddressInfo).port, password, pid: process.pid };
  mkdirSync(dirname(options.stateFile), { recursive: true });
  writeFileSync(options.stateFile, JSON.stringify(served), { mode: 0o600 });
  options.logger.info({ port: served.port }, "the embedded Redis is up (in this process)");
  return {
    url: urlOf(served),
    shared: false,
    async stop() {
      rmSync(options.stateFile, { force: true });
      // Connections still open (a client closing after us) are cut: close() waits for every one.
      for (const socket of sockets) socket.destroy();
      await server.close().catch(() => undefined);
    },
  };
}
