import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { clientKey, rest, startServer } from "../helpers.js";

let server: Awaited<ReturnType<typeof startServer>>;

beforeAll(async () => {
  server = await startServer({
    RATE_LIMIT_REQUESTS: "10",
    RATE_LIMIT_WINDOW_SECONDS: "2",
    AUTH_FAILURES_PER_MINUTE: "5",
  });
});
afterAll(async () => server.stop());

/** A GET from a chosen loopback address (127.0.0.0/8 is all this machine's). */
function getFrom(localAddress: string, path: string, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const { port } = new URL(server.url);
    const req = request(
      { host: "127.0.0.1", port, path, localAddress, headers: { authorization: `Bearer ${key}` } },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("failed authentication is limited per client address", () => {
  it("answers 429 with Retry-After after the limit, on REST and /cable, and leaves other addresses alone", async () => {
    const from = "127.0.0.3";
    const wrong = `api_live_${"0".repeat(40)}`;
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push(await getFrom(from, "/api/v1/admin/gateways", wrong));
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);

    // Refused before the key is looked at: a right key from that address waits too.
    const admin = await clientKey(server, "admin");
    expect(await getFrom(from, "/api/v1/admin/gateways", admin)).toBe(429);
    // Another address with the right key is served as ever.
    expect(await getFrom("127.0.0.4", "/api/v1/admin/gateways", admin)).toBe(200);

    // The answer carries the documented body and when to come back.
    const answer = await new Promise<{ status: number; retryAfter: string | undefined; body: string }>((resolve) => {
      const { port } = new URL(server.url);
      const req = request(
        { host: "127.0.0.1", port, path: "/api/v1/sms/received", localAddress: from, headers: { authorization: "x" } },
        (res) => {
          let body = "";
          res.on("data", (chunk) => {
            body += chunk;
          });
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, retryAfter: res.headers["retry-after"] as string, body }),
          );
        },
      );
      req.end();
    });
    expect(answer.status).toBe(429);
    expect(JSON.parse(answer.body)).toEqual({ error: "Too many failed authentication attempts" });
    expect(Number(answer.retryAfter)).toBeGreaterThan(0);
    expect(Number(answer.retryAfter)).toBeLessThanOrEqual(60);
  });

  it("counts unknown keys tried on /cable too", async () => {
    const frames: string[] = [];
    for (let i = 0; i < 7; i++) {
      const socket = new WebSocket(`${server.url.replace("http", "ws")}/cable?api_key=gw_live_${i}`, {
        localAddress: "127.0.0.5",
      });
      socket.on("message", (data) => frames.push(String(data)));
      await new Promise((resolve) => socket.once("close", resolve));
    }
    expect(frames.filter((frame) => frame.includes('"unauthorized"'))).toHaveLength(7);
    // The sixth and seventh were refused without a look at their keys: the failures stopped counting.
    const failures = await server.deps.redis.zcard("smsgw:rl:authfail:127.0.0.5");
    expect(failures).toBe(5);
  });
});

describe("request limits hold over any window, not per fixed window", () => {
  it("lets no more than the limit through across a window's edge", async () => {
    const key = await clientKey(server, "admin");
    const allowedAt: number[] = [];
    const call = async () => {
      const answer = await rest(server, "GET", "/api/v1/admin/gateways", { key });
      if (answer.status === 200) allowedAt.push(Date.now());
      else expect(answer.status).toBe(429);
    };
    const start = Date.now();
    await call();
    await wait(1600 - (Date.now() - start));
    for (let i = 0; i < 9; i++) await call();
    // A fixed window opened by the first call ends here and would let ten more through at once.
    await wait(2300 - (Date.now() - start));
    for (let i = 0; i < 10; i++) await call();
    expect(allowedAt).toHaveLength(11);
    for (const at of allowedAt) {
      expect(allowedAt.filter((other) => other >= at && other < at + 1900).length).toBeLessThanOrEqual(10);
    }
  });
});
