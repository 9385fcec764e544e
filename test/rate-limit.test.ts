import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../gen/smsgw/v1/admin_pb.js";
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
