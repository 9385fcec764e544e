import { type ChildProcess, spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { lacks } from "../fixtures/tools.js";
import {
  clientKey,
  eventually,
  fastMessages,
  freePort,
  isolate,
  rest,
  simulatedGateway,
  startServer,
  untilStatus,
} from "../helpers.js";

// Only PostgreSQL is needed to start: a server started while its Redis does not answer comes up,
// serves what it can (as in a Redis outage), and catches up when Redis comes. The Redis here is the
// test's own (its own port, nothing on disk), started only after the server.

let redis: ChildProcess | undefined;
let server: Awaited<ReturnType<typeof startServer>> | undefined;

afterAll(async () => {
  if (server !== undefined) {
    await isolate(server);
    await server.stop();
  }
  redis?.kill("SIGKILL");
});

describe.skipIf(lacks("redis-server"))("starting while Redis does not answer, or is not one smsgw can use", () => {
  it("comes up degraded, takes sends, and delivers them once Redis comes", async () => {
    const port = await freePort();
    server = await startServer({ ...fastMessages, REDIS_URL: `redis://127.0.0.1:${port}` }, { worker: true });
    const running = server;
    const up = await rest(running, "GET", "/up");
    expect(up).toMatchObject({ status: 200, body: { status: "degraded", database: "ok", redis: "down" } });

    // Sends are taken: they need PostgreSQL only.
    const key = await clientKey(running);
    const accepted = await rest(running, "POST", "/api/v1/sms/send", {
      key,
      body: { to: "+14155552610", message: "Taken while Redis was away" },
    });
    expect(accepted.status).toBe(202);
    const messageId = (accepted.body as { message_id: string }).message_id;

    // Redis comes: the server finds it, and the message goes out through a phone.
    redis = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: "ignore",
    });
    await eventually(async () => {
      const res = await rest(running, "GET", "/up");
      return (res.body as { status: string }).status === "ok" ? true : undefined;
    }, 30_000);
    await simulatedGateway(running);
    const final = await untilStatus(running, key, messageId, "delivered", 30_000);
    expect(final.status).toBe("delivered");
  }, 90_000);

  it("refuses to start on a node of a Redis Cluster, saying why", async () => {
    const port = await freePort();
    const cluster = spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        join(tmpdir(), `smsgw-cluster-${port}.conf`),
      ],
      { stdio: "ignore" },
    );
    try {
      await eventually(async () => {
        const probe = new Redis(port, "127.0.0.1", { lazyConnect: true, maxRetriesPerRequest: 0 });
        probe.on("error", () => undefined);
        try {
          await probe.connect();
          return (await probe.ping()) === "PONG" ? true : undefined;
        } catch {
          return undefined;
        } finally {
          probe.disconnect();
        }
      });
      await expect(startServer({ REDIS_URL: `redis://127.0.0.1:${port}` })).rejects.toThrow(
        /REDIS_URL names a node of a Redis Cluster.*CROSSSLOT/,
      );
    } finally {
      cluster.kill("SIGKILL");
    }
  });
});
