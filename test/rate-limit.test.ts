import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AdminService } from "../gen/smsgw/v1/admin_pb.js";
import { decisionsFor, RateLimiter } from "../src/modules/rate-limits/rate-limiter.js";
import { clientKey, rest, startServer, unique, withKey } from "./helpers.js";

let server: Awaited<ReturnType<typeof startServer>>;

beforeAll(async () => {
  server = await startServer({
    RATE_LIMIT_REQUESTS: "3",
    RATE_LIMIT_ANONYMOUS_REQUESTS: "2",
    RATE_LIMIT_WINDOW_SECONDS: "60",
  });
});
afterAll(async () => server.stop());

describe("rate limits in Redis", () => {
  it("answers a key's fourth call in the window with 429, Retry-After and the error body", async () => {
    const key = await clientKey(server, "admin");
    for (let i = 0; i < 3; i++) {
      const ok = await rest(server, "GET", "/api/v1/admin/gateways", { key });
      expect(ok.status).toBe(200);
      expect(ok.headers.get("ratelimit-remaining")).toBe(String(2 - i));
    }
    const limited = await rest(server, "GET", "/api/v1/admin/gateways", { key });
    expect(limited.status).toBe(429);
    expect(limited.body).toEqual({ error: "Rate limit exceeded" });
    const retryAfter = Number(limited.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
  });

  it("limits an SMSGate account signed in with Basic the same way, in SMSGate's error shape", async () => {
    const account = await server.deps.keys.createAccount(unique("account"));
    const headers = {
      authorization: `Basic ${Buffer.from(`${account.login}:${account.password}`).toString("base64")}`,
    };
    for (let i = 0; i < 3; i++)
      expect((await rest(server, "GET", "/3rdparty/v1/messages", { headers })).status).toBe(200);
    const limited = await rest(server, "GET", "/3rdparty/v1/messages", { headers });
    expect(limited.status).toBe(429);
    expect(limited.body).toEqual({ message: "Rate limit exceeded", code: 429 });
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  it("counts a key on every door together and answers RESOURCE_EXHAUSTED on gRPC", async () => {
    const key = await clientKey(server, "admin");
    const grpc = createClient(AdminService, createGrpcTransport({ baseUrl: server.url }));
    await grpc.listGateways({}, withKey(key));
    await rest(server, "GET", "/api/v1/admin/gateways", { key });
    await grpc.listGateways({}, withKey(key));
    const error = await grpc.listGateways({}, withKey(key)).catch((e: unknown) => ConnectError.from(e));
    expect((error as ConnectError).code).toBe(Code.ResourceExhausted);
  });

  it("limits each key on its own", async () => {
    const busy = await clientKey(server, "admin");
    const quiet = await clientKey(server, "admin");
    for (let i = 0; i < 4; i++) await rest(server, "GET", "/api/v1/admin/gateways", { key: busy });
    expect((await rest(server, "GET", "/api/v1/admin/gateways", { key: quiet })).status).toBe(200);
  });

  it("limits registration by client address", async () => {
    await server.deps.redis.del("smsgw:rl:peer:127.0.0.1");
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      statuses.push(
        (await rest(server, "POST", "/api/v1/gateway/register", { body: { device_id: unique("rl") } })).status,
      );
    }
    expect(statuses).toEqual([201, 201, 429]);
  });
});

describe("requests counted together", () => {
  it("gives each request of a burst its own decision, in order, as if counted one by one", () => {
    // 3 were in the window; 4 asked, 2 fit in a limit of 5.
    const decisions = decisionsFor(4, { allowed: 2, count: 5, nowMs: 100_000, oldestMs: 70_000 }, 5, 60);
    expect(decisions.map((d) => [d.allowed, d.remaining])).toEqual([
      [true, 1],
      [true, 0],
      [false, 0],
      [false, 0],
    ]);
    expect(decisions.every((d) => d.resetSeconds === 30 && d.limit === 5)).toBe(true);
  });

  it("counts a burst for one subject in one call to Redis, allowing exactly the limit", async () => {
    const redis = new Redis(inject("redisUrl"));
    try {
      await redis.ping();
      const limiter = new RateLimiter(redis, 60);
      const subject = `test:${unique("burst")}`;
      const decisions = await Promise.all(Array.from({ length: 8 }, () => limiter.hit(subject, 5)));
      expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, true, true, false, false, false]);
      expect(decisions.map((d) => d.remaining)).toEqual([4, 3, 2, 1, 0, 0, 0, 0]);
      expect(limiter.mode).toBe("shared");
      // Five members in the window, all from one script call (one prefix and sequence, numbered 1 to 5).
      const members = await redis.zrange(`smsgw:rl:${subject}`, 0, -1);
      expect(members).toHaveLength(5);
      expect(new Set(members.map((member) => member.replace(/:\d+$/, ""))).size).toBe(1);
      // A request after the burst is counted on its own, and still refused.
      expect((await limiter.hit(subject, 5)).allowed).toBe(false);
      // Other subjects are not held up by it.
      expect((await limiter.hit(`${subject}:other`, 5)).remaining).toBe(4);
      await redis.del(`smsgw:rl:${subject}`, `smsgw:rl:${subject}:other`);
    } finally {
      redis.disconnect();
    }
  });
});
