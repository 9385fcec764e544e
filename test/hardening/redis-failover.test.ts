import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
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

// REDIS_URL may name a Sentinel set: redis+sentinel://host:port/name. Here Redis's own Sentinel
// (Debian's redis-sentinel) watches a primary and its replica, all the test's own (own ports, nothing
// on disk). The primary is killed (SIGKILL) while sends arrive: the Sentinel promotes the replica, the
// server follows it without a restart, nothing accepted is lost, and no SMS goes out twice.

const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), "smsgw-sentinel-"));
let server: Awaited<ReturnType<typeof startServer>> | undefined;

afterAll(async () => {
  if (server !== undefined) {
    await isolate(server);
    await server.stop();
  }
  for (const child of children) child.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

function redisServer(port: number, ...extra: string[]): ChildProcess {
  const child = spawn(
    "redis-server",
    // The primary writes a snapshot to sync its replica: into the test's directory.
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, ...extra],
    { stdio: "ignore" },
  );
  children.push(child);
  return child;
}

async function answers(port: number, check: (redis: Redis) => Promise<boolean>): Promise<void> {
  await eventually(async () => {
    const probe = new Redis(port, "127.0.0.1", { lazyConnect: true, maxRetriesPerRequest: 0 });
    probe.on("error", () => undefined);
    try {
      await probe.connect();
      return (await check(probe)) ? true : undefined;
    } catch {
      return undefined;
    } finally {
      probe.disconnect();
    }
  }, 20_000);
}

describe.skipIf(lacks("redis-server", "redis-sentinel"))("Redis behind Sentinel", () => {
  it("follows a failover mid-traffic: nothing accepted lost, nothing sent twice, presence and limits back", async () => {
    const [primaryPort, replicaPort, sentinelPort] = [await freePort(), await freePort(), await freePort()];
    const primary = redisServer(primaryPort);
    redisServer(replicaPort, "--replicaof", "127.0.0.1", String(primaryPort));
    await answers(replicaPort, async (redis) => /master_link_status:up/.test(await redis.info("replication")));
    const config = join(dir, "sentinel.conf");
    writeFileSync(
      config,
      [
        `port ${sentinelPort}`,
        "bind 127.0.0.1",
        `dir ${dir}`,
        `sentinel monitor smsgw 127.0.0.1 ${primaryPort} 1`,
        "sentinel down-after-milliseconds smsgw 1000",
        "sentinel failover-timeout smsgw 5000",
        "",
      ].join("\n"),
    );
    children.push(spawn("redis-sentinel", [config], { stdio: "ignore" }));
    await answers(sentinelPort, async (redis) => /slaves=1/.test(await redis.info("sentinel")));

    server = await startServer(
      {
        ...fastMessages,
        // One phone takes the whole run (a real phone's pace, 30 a minute, would hold most of it for later).
        GATEWAY_SENDS_PER_MINUTE: "10000",
        REDIS_URL: `redis+sentinel://127.0.0.1:${sentinelPort}/smsgw/0`,
      },
      { worker: true },
    );
    const running = server;
    const key = await clientKey(running);
    const phone = await simulatedGateway(running);
    const sends = new Map<string, number>();
    phone.onSend((messageId) => sends.set(messageId, (sends.get(messageId) ?? 0) + 1));

    // Sends every 50 ms for 8 s; the primary dies 2 s in.
    const accepted: string[] = [];
    const statuses = new Map<number, number>();
    const started = Date.now();
    let killed = false;
    for (let i = 0; Date.now() - started < 8000; i++) {
      if (!killed && Date.now() - started > 2000) {
        primary.kill("SIGKILL");
        killed = true;
      }
      const res = await rest(running, "POST", "/api/v1/sms/send", {
        key,
        body: { to: `+1415555${String(3000 + (i % 1000)).padStart(4, "0")}`, message: `failover ${i}` },
      });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status === 202) accepted.push((res.body as { message_id: string }).message_id);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Only acceptances and outage answers: never a 500.
    expect([...statuses.keys()].filter((status) => status !== 202 && status !== 503)).toEqual([]);
    expect(accepted.length).toBeGreaterThan(50);

    // The replica is the primary now, and the server found it: /up is whole again, rate limits shared.
    await answers(replicaPort, async (redis) => /role:master/.test(await redis.info("replication")));
    await eventually(async () => {
      const res = await rest(running, "GET", "/up");
      const body = res.body as { status: string; rate_limiting: string };
      return body.status === "ok" && body.rate_limiting === "shared" ? true : undefined;
    }, 30_000);

    // Every accepted message is delivered, each sent once.
    for (const id of accepted)
      expect((await untilStatus(running, key, id, "delivered", 30_000)).status).toBe("delivered");
    expect([...sends.entries()].filter(([, count]) => count > 1)).toEqual([]);
    expect(accepted.filter((id) => !sends.has(id))).toEqual([]);

    // The phone's presence is in the new primary: a message sent now goes straight to it.
    const after = await rest(running, "POST", "/api/v1/sms/send", {
      key,
      body: { to: "+14155553999", message: "after the failover" },
    });
    expect(after.status).toBe(202);
    const afterId = (after.body as { message_id: string }).message_id;
    expect((await untilStatus(running, key, afterId, "delivered", 10_000)).status).toBe("delivered");
    const presence = new Redis(replicaPort, "127.0.0.1");
    try {
      const keys = await presence.keys("smsgw:*");
      expect(keys).toContain(`smsgw:presence:${phone.id}`);
      expect(keys.some((name) => name.startsWith("smsgw:rl:key:"))).toBe(true);
    } finally {
      presence.disconnect();
    }
  }, 120_000);
});
