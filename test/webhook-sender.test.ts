import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { sendWebhook } from "../src/modules/webhooks/index.js";

// One endpoint's deliveries share kept-alive connections (issue 35): no handshake per delivery.
let server: Server | undefined;
afterEach(async () => {
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = undefined;
});

async function endpoint(keepAliveTimeoutMs: number) {
  const seen = { connections: 0, requests: 0 };
  server = createServer((request, response) => {
    seen.requests += 1;
    request.resume();
    request.on("end", () => response.end("ok"));
  });
  server.keepAliveTimeout = keepAliveTimeoutMs;
  server.on("connection", () => {
    seen.connections += 1;
  });
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { seen, url: `http://127.0.0.1:${port}/hook` };
}

const deliver = (url: string) =>
  sendWebhook({ url, body: '{"event":"sms_sent"}', headers: {}, timeoutMs: 2000, allowPrivate: true });

describe("webhook deliveries", () => {
  it("reuse one connection to an endpoint, one after another and several at once", async () => {
    const { seen, url } = await endpoint(5000);
    for (let i = 0; i < 5; i++) expect((await deliver(url)).outcome).toBe("succeeded");
    expect(seen).toEqual({ connections: 1, requests: 5 });
    const together = await Promise.all(Array.from({ length: 8 }, () => deliver(url)));
    expect(together.every((result) => result.outcome === "succeeded")).toBe(true);
    expect(seen.requests).toBe(13);
    expect(seen.connections).toBeLessThanOrEqual(8);
  });

  it("open a new connection when the endpoint closed its idle one, without failing the delivery", async () => {
    const { seen, url } = await endpoint(50);
    expect((await deliver(url)).outcome).toBe("succeeded");
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await deliver(url)).outcome).toBe("succeeded");
    expect(seen).toEqual({ connections: 2, requests: 2 });
  });
});
