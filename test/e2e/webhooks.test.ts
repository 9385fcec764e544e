import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isPrivateAddress } from "../../src/modules/webhooks/index.js";
import { Receiver } from "../fixtures/receiver.js";
import {
  clientKey,
  eventually,
  fastMessages,
  isolate,
  registeredGateway,
  rest,
  simulatedGateway,
  startServer,
} from "../helpers.js";

let server: Awaited<ReturnType<typeof startServer>>;
let admin: string;
let client: string;

const settings = {
  ...fastMessages,
  WEBHOOK_ALLOW_PRIVATE_TARGETS: "true",
  WEBHOOK_RETRY_INITIAL_MS: "200",
  WEBHOOK_RETRY_MAX_MS: "1000",
  WEBHOOK_TIMEOUT_MS: "2000",
  SECRET_KEY_BASE: "test-secret-key-base",
};

beforeAll(async () => {
  server = await startServer(settings, { worker: true });
  admin = await clientKey(server, "admin");
  client = await clientKey(server);
  await server.deps.orm.em.getConnection().execute("update webhooks set active = false");
  await isolate(server);
});
afterAll(async () => server.stop());

async function endpoint(receiver: Receiver, events: string[], secretKey?: string) {
  const res = await rest(server, "POST", "/api/v1/admin/webhooks", {
    key: admin,
    body: { url: receiver.url, events, ...(secretKey === undefined ? {} : { secret_key: secretKey }) },
  });
  expect(res.status).toBe(201);
  return (res.body as { webhook: { id: number } }).webhook.id;
}

const hmac = (secret: string, data: string) => createHmac("sha256", secret).update(data).digest("hex");

describe("each event reaches the endpoint with the documented payload and a valid signature", () => {
  it("sends sms_received, sms_sent, sms_delivered, sms_failed, gateway_online and gateway_offline", async () => {
    const receiver = await new Receiver().start();
    const id = await endpoint(
      receiver,
      ["sms_received", "sms_sent", "sms_delivered", "sms_failed", "gateway_online", "gateway_offline"],
      "whsec_test",
    );
    try {
      const phone = await simulatedGateway(server);
      const gw = await registeredGateway(server);
      await rest(server, "POST", "/api/v1/gateway/sms/received", {
        key: gw.key,
        body: { sender: "+14155550123", message: "Hello", timestamp: "2025-10-19T10:30:00Z" },
      });
      const sent = await rest(server, "POST", "/api/v1/sms/send", {
        key: client,
        body: { to: "+14155552671", message: "to you" },
      });
      const messageId = (sent.body as { message_id: string }).message_id;
      await eventually(
        async () => (receiver.events("sms_delivered").length > 0 ? true : undefined),
        20_000,
        "sms_delivered",
      );
      await phone.disconnect();
      await eventually(
        async () => (receiver.events("gateway_offline").length > 0 ? true : undefined),
        20_000,
        "gateway_offline",
      );
      const failing = await simulatedGateway(server, { successRate: 0 });
      const doomed = await rest(server, "POST", "/api/v1/sms/send", {
        key: client,
        body: { to: "+14155552671", message: "doomed", gateway_id: failing.deviceId },
      });
      const doomedId = (doomed.body as { message_id: string }).message_id;
      await eventually(async () => (receiver.events("sms_failed").length > 0 ? true : undefined), 40_000, "sms_failed");
      await failing.disconnect();

      const [received] = receiver.events("sms_received");
      expect(Object.keys(received ?? {})).toEqual([
        "event",
        "message_id",
        "from",
        "message",
        "received_at",
        "gateway_id",
      ]);
      expect(received).toEqual({
        event: "sms_received",
        message_id: expect.stringMatching(/^msg_/),
        from: "+14155550123",
        message: "Hello",
        received_at: "2025-10-19T10:30:00.000Z",
        gateway_id: gw.deviceId,
      });
      const [smsSent] = receiver.events("sms_sent").filter((e) => e.message_id === messageId);
      expect(Object.keys(smsSent ?? {})).toEqual(["event", "message_id", "to", "message", "sent_at", "gateway_id"]);
      expect(smsSent).toMatchObject({ to: "+14155552671", message: "to you", gateway_id: phone.deviceId });
      const [delivered] = receiver.events("sms_delivered");
      expect(Object.keys(delivered ?? {})).toEqual([
        "event",
        "message_id",
        "to",
        "message",
        "delivered_at",
        "gateway_id",
      ]);
      const [failed] = receiver.events("sms_failed");
      expect(Object.keys(failed ?? {})).toEqual([
        "event",
        "message_id",
        "to",
        "message",
        "failed_at",
        "error_message",
        "gateway_id",
      ]);
      expect(failed).toMatchObject({ message_id: doomedId, error_message: "simulated failure" });
      const online = receiver.events("gateway_online").find((e) => e.gateway_id === phone.deviceId);
      expect(Object.keys(online ?? {})).toEqual([
        "event",
        "gateway_id",
        "name",
        "status",
        "last_heartbeat_at",
        "timestamp",
      ]);
      expect(online).toMatchObject({ status: "online" });
      expect(receiver.events("gateway_offline").find((e) => e.gateway_id === phone.deviceId)).toMatchObject({
        status: "offline",
      });

      for (const request of receiver.requests) {
        expect(request.headers["x-webhook-signature"]).toBe(hmac("whsec_test", request.body));
        const timestamp = String(request.headers["x-webhook-timestamp"]);
        expect(Math.abs(Number(timestamp) - Date.now() / 1000)).toBeLessThan(120);
        expect(request.headers["x-webhook-signature-v2"]).toBe(hmac("whsec_test", `${timestamp}.${request.body}`));
        expect(request.headers["content-type"]).toBe("application/json");
      }
    } finally {
      await rest(server, "DELETE", `/api/v1/admin/webhooks/${id}`, { key: admin });
      await receiver.stop();
    }
  }, 90_000);
});

describe("retries", () => {
  it("delivers exactly once to an endpoint that fails twice and then succeeds, with every attempt listed", async () => {
    const receiver = await new Receiver().start();
    receiver.respond(500, 503, 200);
    const id = await endpoint(receiver, ["sms_received"]);
    try {
      const gw = await registeredGateway(server);
      await rest(server, "POST", "/api/v1/gateway/sms/received", {
        key: gw.key,
        body: { sender: "+14155550124", message: "retry" },
      });
      const delivery = await eventually(
        async () => {
          const res = await rest(server, "GET", `/api/v1/admin/webhooks/${id}/deliveries`, { key: admin });
          const [first] = (res.body as { deliveries: { status: string; attempts: { status_code: number | null }[] }[] })
            .deliveries;
          return first?.status === "succeeded" ? first : undefined;
        },
        20_000,
        "the delivery to succeed",
      );
      expect(delivery.attempts.map((attempt) => attempt.status_code)).toEqual([500, 503, 200]);
      expect(Object.keys(delivery)).toEqual([
        "delivery_id",
        "event",
        "status",
        "created_at",
        "completed_at",
        "attempts",
      ]);
      expect(Object.keys(delivery.attempts[0] ?? {})).toEqual([
        "attempt",
        "started_at",
        "status_code",
        "duration_ms",
        "error",
      ]);
      expect(delivery.attempts[2]).toMatchObject({ attempt: 3, status_code: 200, error: null });
      expect(receiver.requests.filter((r) => JSON.parse(r.body).event === "sms_received")).toHaveLength(3);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(receiver.requests).toHaveLength(3);
      // And /metrics counts the delivery and its attempts by outcome.
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      const value = (series: string) =>
        Number(
          metrics
            .split("\n")
            .find((line) => line.startsWith(`${series} `))
            ?.split(" ")[1] ?? 0,
        );
      expect(value('smsgw_webhook_deliveries_total{outcome="succeeded"}')).toBeGreaterThanOrEqual(1);
      expect(value('smsgw_webhook_attempt_seconds_count{outcome="retry"}')).toBeGreaterThanOrEqual(2);
    } finally {
      await receiver.stop();
      await rest(server, "DELETE", `/api/v1/admin/webhooks/${id}`, { key: admin });
    }
  });

  it("stops at a 400 and honours Retry-After on a 429", async () => {
    const receiver = await new Receiver().start();
    receiver.respond({ status: 429, headers: { "retry-after": "1" } }, 400);
    const id = await endpoint(receiver, ["sms_received"]);
    try {
      const gw = await registeredGateway(server);
      await rest(server, "POST", "/api/v1/gateway/sms/received", {
        key: gw.key,
        body: { sender: "+14155550125", message: "stop" },
      });
      const delivery = await eventually(
        async () => {
          const res = await rest(server, "GET", `/api/v1/admin/webhooks/${id}/deliveries`, { key: admin });
          const [first] = (
            res.body as { deliveries: { status: string; attempts: { status_code: number; error: string }[] }[] }
          ).deliveries;
          return first?.status === "failed" ? first : undefined;
        },
        20_000,
        "the delivery to be given up",
      );
      expect(delivery.attempts.map((attempt) => attempt.status_code)).toEqual([429, 400]);
      expect(delivery.attempts[1]?.error).toBe("HTTP 400");
      const [first, second] = receiver.requests;
      expect((second?.at ?? 0) - (first?.at ?? 0)).toBeGreaterThanOrEqual(950);
    } finally {
      await receiver.stop();
      await rest(server, "DELETE", `/api/v1/admin/webhooks/${id}`, { key: admin });
    }
  });
});

describe("endpoint management", () => {
  it("creates, lists, updates, tests and deletes an endpoint, never showing its secret", async () => {
    const receiver = await new Receiver().start();
    try {
      const created = await rest(server, "POST", "/api/v1/admin/webhooks", {
        key: admin,
        body: { url: receiver.url, events: ["sms_sent"], secret_key: "s3cret-value" },
      });
      expect(created.status).toBe(201);
      const webhook = (created.body as { webhook: Record<string, unknown> }).webhook;
      expect(Object.keys(webhook)).toEqual(["id", "url", "events", "has_secret", "active", "created_at", "updated_at"]);
      expect(webhook).toMatchObject({ url: receiver.url, events: ["sms_sent"], has_secret: true, active: true });
      expect(JSON.stringify(created.body)).not.toContain("s3cret-value");
      const stored: { secret_encrypted: string }[] = await server.deps.orm.em
        .getConnection()
        .execute("select secret_encrypted from webhooks where id = ?", [webhook.id]);
      expect(stored[0]?.secret_encrypted).toMatch(/^v1:/);
      expect(stored[0]?.secret_encrypted).not.toContain("s3cret");

      const updated = await rest(server, "PATCH", `/api/v1/admin/webhooks/${webhook.id}`, {
        key: admin,
        body: { events: ["sms_failed", "sms_sent"], active: false },
      });
      expect((updated.body as { webhook: Record<string, unknown> }).webhook).toMatchObject({
        events: ["sms_failed", "sms_sent"],
        active: false,
        has_secret: true,
      });
      const listed = await rest(server, "GET", "/api/v1/admin/webhooks", { key: admin });
      expect(JSON.stringify(listed.body)).not.toContain("s3cret-value");

      const tested = await rest(server, "POST", `/api/v1/admin/webhooks/${webhook.id}/test`, { key: admin });
      expect(tested.body).toEqual({ success: true, status_code: 200, duration_ms: expect.any(Number), error: null });
      const [request] = receiver.requests;
      expect(JSON.parse(request?.body ?? "{}")).toMatchObject({ event: "webhook_test", webhook_id: webhook.id });
      expect(request?.headers["x-webhook-signature"]).toBe(hmac("s3cret-value", request?.body ?? ""));

      expect(await rest(server, "DELETE", `/api/v1/admin/webhooks/${webhook.id}`, { key: admin })).toMatchObject({
        status: 200,
        body: { success: true },
      });
      expect(await rest(server, "DELETE", `/api/v1/admin/webhooks/${webhook.id}`, { key: admin })).toMatchObject({
        status: 404,
      });
    } finally {
      await receiver.stop();
    }
  });

  it("refuses unknown events and bad URLs with 422", async () => {
    expect(
      await rest(server, "POST", "/api/v1/admin/webhooks", {
        key: admin,
        body: { url: "https://example.com/h", events: ["sms_lost"] },
      }),
    ).toMatchObject({
      status: 422,
    });
    expect(
      await rest(server, "POST", "/api/v1/admin/webhooks", {
        key: admin,
        body: { url: "ftp://example.com/h", events: ["sms_sent"] },
      }),
    ).toMatchObject({
      status: 422,
      body: { error: "url must be http or https" },
    });
    expect(
      await rest(server, "POST", "/api/v1/admin/webhooks", {
        key: client,
        body: { url: "https://example.com/h", events: ["sms_sent"] },
      }),
    ).toMatchObject({
      status: 403,
    });
  });
});

describe("outbound requests go only to public addresses by default", () => {
  it("refuses loopback, private, link-local and metadata addresses unless allowed", async () => {
    const strict = await startServer({ SECRET_KEY_BASE: "x" });
    try {
      for (const url of [
        "http://127.0.0.1:8080/h",
        "http://10.1.2.3/h",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/h",
        "http://localhost/h",
        "http://192.168.1.10/h",
      ]) {
        const res = await rest(strict, "POST", "/api/v1/admin/webhooks", {
          key: await clientKey(strict, "admin"),
          body: { url, events: ["sms_sent"] },
        });
        expect({ url, status: res.status, body: res.body }).toEqual({
          url,
          status: 422,
          body: { error: "url points to a private, loopback or link-local address" },
        });
      }
    } finally {
      await strict.stop();
    }
    expect(["8.8.8.8", "2606:4700:4700::1111"].map(isPrivateAddress)).toEqual([false, false]);
    expect(["::ffff:127.0.0.1", "100.64.0.1", "fd00::1", "0.0.0.0"].map(isPrivateAddress)).toEqual([
      true,
      true,
      true,
      true,
    ]);
  });
});
