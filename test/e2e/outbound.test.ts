import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { defaultBehaviour, SimulatedGateway } from "../../src/simulator/simulated-gateway.js";
import { rfc3339 } from "../fixtures/documented.js";
import {
  clientKey,
  eventually,
  fastMessages,
  isolate,
  messageStatus,
  phoneRack,
  rest,
  startServer,
  untilStatus,
} from "../helpers.js";

let server: Awaited<ReturnType<typeof startServer>>;
let key: string;
const phones = phoneRack(() => server);

beforeAll(async () => {
  server = await startServer(fastMessages, { worker: true });
  key = await clientKey(server);
});
afterEach(async () => {
  await phones.disconnectAll();
  await isolate(server);
});
afterAll(async () => server.stop());

const phone = phones.connect;

async function send(body: Record<string, unknown>, headers: Record<string, string> = {}) {
  const res = await rest(server, "POST", "/api/v1/sms/send", { key, body, headers });
  return res as { status: number; body: { success: boolean; message_id: string; status: string } };
}

const statusOf = (messageId: string) => messageStatus(server, key, messageId);
const until = (messageId: string, status: string, timeoutMs?: number) =>
  untilStatus(server, key, messageId, status, timeoutMs);

describe("sending an SMS through a connected phone", () => {
  it("accepts with 202, reaches the phone, and ends delivered with the documented status shape", async () => {
    const gateway = await phone();
    const res = await send({ to: "+14155552671", message: "Your code is 123456" });
    expect(res.status).toBe(202);
    expect(Object.keys(res.body)).toEqual(["success", "message_id", "status"]);
    expect(res.body).toEqual({
      success: true,
      message_id: expect.stringMatching(/^msg_[0-9a-z]{24}$/),
      status: "queued",
    });

    const final = await until(res.body.message_id, "delivered");
    expect(Object.keys(final)).toEqual([
      "message_id",
      "status",
      "sent_at",
      "delivered_at",
      "failed_at",
      "error_message",
    ]);
    expect(final).toEqual({
      message_id: res.body.message_id,
      status: "delivered",
      sent_at: expect.stringMatching(rfc3339),
      delivered_at: expect.stringMatching(rfc3339),
      failed_at: null,
      error_message: null,
    });
    expect(gateway.commands.map((command) => command.recipient)).toEqual(["+14155552671"]);
    const events = (await server.deps.events.journalOf(res.body.message_id)).map((entry) => entry.payload);
    expect(events.map((event) => event.event)).toEqual(["sms_sent", "sms_delivered"]);
    expect(events[0]).toMatchObject({
      to: "+14155552671",
      message: "Your code is 123456",
      gateway_id: gateway.deviceId,
    });
    const row = (await server.deps.gateways.list()).find((g) => g.id === gateway.id);
    expect(row).toMatchObject({ messagesSentToday: 1, totalMessagesSent: 1 });

    // An operator finds the message's workflow in the Temporal UI by message id, gateway and status.
    const query = `SmsMessageId = "${res.body.message_id}" AND SmsGatewayId = "${gateway.deviceId}" AND SmsStatus = "delivered"`;
    const found = await eventually(
      async () => {
        for await (const workflow of server.deps.temporal.workflow.list({ query })) return workflow.workflowId;
        return undefined;
      },
      15_000,
      "the workflow to be listed by its search attributes",
    );
    expect(found).toBe(`message/${res.body.message_id}`);
  });

  it("shows a queued message with null timestamps until a gateway reports", async () => {
    const res = await send({ to: "+14155552671", message: "waiting" });
    const status = await statusOf(res.body.message_id);
    expect(status).toEqual({
      message_id: res.body.message_id,
      status: "queued",
      sent_at: null,
      delivered_at: null,
      failed_at: null,
      error_message: null,
    });
  });
});

describe("balance", () => {
  it("shares sends among ten idle phones that answer at once: none gets more than twice its share", async () => {
    const fleet = await Promise.all(Array.from({ length: 10 }, () => phone()));
    const ids: string[] = [];
    // Ten clients at a time, as an application sending a batch would.
    for (let wave = 0; wave < 10; wave++) {
      const sent = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          send({ to: `+1415555${String(wave * 10 + i).padStart(4, "0")}`, message: "hi" }),
        ),
      );
      ids.push(...sent.map((res) => res.body.message_id));
    }
    for (const id of ids) await until(id, "delivered");
    const counts = fleet.map((gateway) => gateway.commands.length);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(100);
    expect(Math.max(...counts)).toBeLessThanOrEqual(20);
    expect(Math.min(...counts)).toBeGreaterThan(0);
  });
});

describe("failover", () => {
  it("retries on another gateway after backoff when a gateway reports failed", async () => {
    const first = await phone({ autoReport: false });
    const res = await send({ to: "+14155552671", message: "failover", gateway_id: first.deviceId });
    await eventually(
      async () => (first.commands.length > 0 ? true : undefined),
      10_000,
      "the first phone to get the command",
    );
    const second = await phone();
    first.report(res.body.message_id, "failed", "SIM blocked");
    await until(res.body.message_id, "delivered");
    expect(second.commands.map((c) => c.messageId)).toContain(res.body.message_id);
    const attempts: { gateway_id: number; outcome: string; error: string | null }[] = await server.deps.orm.em
      .getConnection()
      .execute("select gateway_id, outcome, error from message_attempts where message_id = ? order by attempt", [
        res.body.message_id,
      ]);
    expect(attempts).toEqual([
      { gateway_id: first.id, outcome: "failed", error: "SIM blocked" },
      { gateway_id: second.id, outcome: "sent", error: null },
    ]);
    // The same, through the API: every attempt, oldest first, with its gateway, times, outcome and error.
    const listed = await rest(server, "GET", `/api/v1/sms/${res.body.message_id}/attempts`, { key });
    expect(listed).toMatchObject({ status: 200 });
    expect(listed.body).toEqual({
      message_id: res.body.message_id,
      attempts: [
        {
          attempt: 1,
          gateway_id: first.deviceId,
          dispatched_at: expect.stringMatching(rfc3339),
          acknowledged_at: expect.stringMatching(rfc3339),
          ended_at: expect.stringMatching(rfc3339),
          outcome: "failed",
          error: "SIM blocked",
        },
        {
          attempt: 2,
          gateway_id: second.deviceId,
          dispatched_at: expect.stringMatching(rfc3339),
          acknowledged_at: expect.stringMatching(rfc3339),
          ended_at: expect.stringMatching(rfc3339),
          outcome: "sent",
          error: null,
        },
      ],
    });
    const other = await clientKey(server);
    expect(await rest(server, "GET", `/api/v1/sms/${res.body.message_id}/attempts`, { key: other })).toMatchObject({
      status: 404,
      body: { error: "Message not found" },
    });
  });

  it("lists an attempt in progress without an outcome, and none for a message no gateway was given", async () => {
    const waiting = await send({ to: "+14155552671", message: "nobody online" });
    expect((await rest(server, "GET", `/api/v1/sms/${waiting.body.message_id}/attempts`, { key })).body).toEqual({
      message_id: waiting.body.message_id,
      attempts: [],
    });
    const holder = await phone({ autoReport: false });
    await eventually(async () => (holder.tally.sent > 0 ? true : undefined), 10_000, "the command");
    const listed = await rest(server, "GET", `/api/v1/sms/${waiting.body.message_id}/attempts`, { key });
    expect(listed.body).toEqual({
      message_id: waiting.body.message_id,
      attempts: [
        {
          attempt: 1,
          gateway_id: holder.deviceId,
          dispatched_at: expect.stringMatching(rfc3339),
          acknowledged_at: expect.stringMatching(rfc3339),
          ended_at: null,
          outcome: null,
          error: null,
        },
      ],
    });
  });

  it("fails over when the gateway disconnects before acknowledging the command", async () => {
    const first = await phone({ autoReport: false, ack: false, reconnect: false });
    const res = await send({ to: "+14155552671", message: "dropped", gateway_id: first.deviceId });
    await eventually(
      async () => (first.commands.length > 0 ? true : undefined),
      10_000,
      "the first phone to get the command",
    );
    const second = await phone();
    await first.disconnect();
    await until(res.body.message_id, "delivered");
    expect(second.commands.map((c) => c.messageId)).toContain(res.body.message_id);
    const outcomes: { outcome: string }[] = await server.deps.orm.em
      .getConnection()
      .execute("select outcome from message_attempts where message_id = ? order by attempt", [res.body.message_id]);
    expect(outcomes.map((row) => row.outcome)).toEqual(["disconnected", "sent"]);
  });

  it("never gives a message its gateway acknowledged to another gateway when that one disconnects", async () => {
    const first = await phone({ autoReport: false, reconnect: false });
    const sentByFirst: string[] = [];
    first.onSend((messageId) => sentByFirst.push(messageId));
    const res = await send({ to: "+14155552671", message: "mine", gateway_id: first.deviceId });
    const id = res.body.message_id;
    // The phone sends the SMS once the server's receipt for its acknowledgement came back.
    await eventually(async () => (sentByFirst.includes(id) ? true : undefined), 10_000, "the receipt");
    const second = await phone();
    await first.disconnect();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(second.commands.map((c) => c.messageId)).not.toContain(id);
    expect((await statusOf(id)).status).toBe("dispatched");
    // Back online, the phone is not asked again (it acknowledged), and its report ends the message.
    const back = new SimulatedGateway(createGrpcTransport({ baseUrl: server.url }), first.apiKey, first.deviceId, {
      ...defaultBehaviour,
      autoReport: false,
    });
    await back.connect();
    back.report(id, "delivered");
    await until(id, "delivered");
    expect(back.commands).toEqual([]);
    expect(second.commands.map((c) => c.messageId)).not.toContain(id);
    await back.disconnect();
  });

  it("keeps a message queued while no gateway is online, and delivers it when one connects", async () => {
    const res = await send({ to: "+14155552671", message: "patience" });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect((await statusOf(res.body.message_id)).status).toBe("queued");
    await phone();
    await until(res.body.message_id, "delivered");
  });

  it("fails for good after the attempt limit, with the last error", async () => {
    const flaky = await phone({ successRate: 0 });
    const res = await send({ to: "+14155552671", message: "doomed" });
    const final = await until(res.body.message_id, "failed", 30_000);
    expect(final).toMatchObject({
      failed_at: expect.stringMatching(rfc3339),
      error_message: "simulated failure",
      sent_at: null,
    });
    expect(flaky.commands.length).toBe(5);
    const events = (await server.deps.events.journalOf(res.body.message_id)).map((entry) => entry.payload);
    expect(events.map((event) => event.event)).toEqual(["sms_failed"]);
  });
});

describe("the message's own settings", () => {
  it("expires a message whose validity runs out before any gateway sends it", async () => {
    const res = await send({ to: "+14155552671", message: "too late", validity_seconds: 2 });
    const final = await until(res.body.message_id, "expired", 10_000);
    expect(final.failed_at).toBeNull();
  });

  it("returns the same message for the same idempotency key, header or body, and sends one SMS", async () => {
    const gateway = await phone();
    const first = await send({ to: "+14155552671", message: "once" }, { "idempotency-key": "order-42" });
    const again = await send({ to: "+14155552671", message: "once" }, { "idempotency-key": "order-42" });
    const inBody = await send({ to: "+14155552671", message: "once", idempotency_key: "order-42" });
    expect(again.body.message_id).toBe(first.body.message_id);
    expect(inBody.body.message_id).toBe(first.body.message_id);
    await until(first.body.message_id, "delivered");
    expect(gateway.commands.filter((c) => c.messageId === first.body.message_id)).toHaveLength(1);
    const different = await send({ to: "+14155552671", message: "changed" }, { "idempotency-key": "order-42" });
    expect(different).toMatchObject({
      status: 422,
      body: { error: "idempotency_key was already used for a different request" },
    });
  });

  it("waits for send_at before dispatching", async () => {
    const gateway = await phone();
    const sendAt = new Date(Date.now() + 3000);
    const res = await send({ to: "+14155552671", message: "later", send_at: sendAt.toISOString() });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(gateway.commands).toHaveLength(0);
    expect((await statusOf(res.body.message_id)).status).toBe("queued");
    await until(res.body.message_id, "delivered");
    const delivered = await server.deps.messages.get({ keyId: 0, admin: true }, res.body.message_id);
    expect(delivered.sentAt?.getTime()).toBeGreaterThanOrEqual(sendAt.getTime());
  });

  it("cancels a message that waits, and refuses to cancel a delivered one", async () => {
    const res = await send({
      to: "+14155552671",
      message: "never mind",
      send_at: new Date(Date.now() + 60_000).toISOString(),
    });
    const cancelled = await rest(server, "POST", `/api/v1/sms/${res.body.message_id}/cancel`, { key });
    expect(cancelled).toMatchObject({
      status: 200,
      body: { success: true, message_id: res.body.message_id, status: "cancelled" },
    });
    expect(Object.keys(cancelled.body as object)).toEqual(["success", "message_id", "status"]);
    await phone();
    const done = await send({ to: "+14155552671", message: "done" });
    await until(done.body.message_id, "delivered");
    expect(await rest(server, "POST", `/api/v1/sms/${done.body.message_id}/cancel`, { key })).toMatchObject({
      status: 422,
      body: { error: "message is already delivered and cannot be cancelled" },
    });
  });

  it("sends a batch as one message per distinct recipient", async () => {
    const gateway = await phone();
    const res = await rest(server, "POST", "/api/v1/sms/send_batch", {
      key,
      body: { to: ["+14155552671", "(415) 555-2672", "+14155552671"], message: "hello all" },
    });
    expect(res.status).toBe(202);
    expect(Object.keys(res.body as object)).toEqual(["success", "messages"]);
    const messages = (res.body as { messages: { message_id: string; to: string; status: string }[] }).messages;
    expect(Object.keys(messages[0] ?? {})).toEqual(["message_id", "to", "status"]);
    expect(messages.every((m) => m.status === "queued" && m.message_id.startsWith("msg_"))).toBe(true);
    expect(messages.map((m) => m.to)).toEqual(["+14155552671", "+14155552672"]);
    for (const message of messages) await until(message.message_id, "delivered");
    expect(gateway.commands).toHaveLength(2);
  });
});

describe("rules around messages", () => {
  it("answers 422 for a recipient that is not a phone number and stores nothing", async () => {
    const before: { count: number }[] = await server.deps.orm.em
      .getConnection()
      .execute("select count(*)::int as count from messages");
    const res = await send({ to: "not a number", message: "x" });
    expect(res).toMatchObject({ status: 422, body: { error: "to is not a valid phone number" } });
    const after: { count: number }[] = await server.deps.orm.em
      .getConnection()
      .execute("select count(*)::int as count from messages");
    expect(after[0]?.count).toBe(before[0]?.count);
  });

  it("takes an idempotency key of 255 characters, the contract's limit, and refuses one of 256 with 422", async () => {
    const longest = `k${"x".repeat(254)}-${Date.now()}`.slice(-255);
    expect(longest).toHaveLength(255);
    expect((await send({ to: "+14155552671", message: "x" }, { "idempotency-key": longest })).status).toBe(202);
    const res = await send({ to: "+14155552671", message: "x" }, { "idempotency-key": `${longest}y` });
    expect(res).toMatchObject({ status: 422, body: { error: "idempotency_key must be 1 to 255 characters" } });
  });

  it("shows a client only the messages its own key sent", async () => {
    const res = await send({ to: "+14155552671", message: "mine" });
    const other = await clientKey(server);
    expect(await rest(server, "GET", `/api/v1/sms/status/${res.body.message_id}`, { key: other })).toMatchObject({
      status: 404,
      body: { error: "Message not found" },
    });
  });

  it("refuses a report from a gateway the message was never given to, and takes repeated reports as no-ops", async () => {
    const gateway = await phone();
    const res = await send({ to: "+14155552671", message: "report rules" });
    await until(res.body.message_id, "delivered");
    const stranger = await rest(server, "POST", "/api/v1/gateway/register", {
      body: { device_id: `stranger-${Date.now()}` },
    });
    const strangerKey = (stranger.body as { api_key: string }).api_key;
    expect(
      await rest(server, "POST", "/api/v1/gateway/sms/status", {
        key: strangerKey,
        body: { message_id: res.body.message_id, status: "delivered" },
      }),
    ).toMatchObject({ status: 403, body: { error: "This message was not sent through this gateway" } });
    const repeat = await rest(server, "POST", "/api/v1/gateway/sms/status", {
      key: (await server.deps.keys.create({ scope: "gateway", name: "same", gatewayId: gateway.id })).key,
      body: { message_id: res.body.message_id, status: "delivered", error_message: null },
    });
    expect({ status: repeat.status, body: repeat.body }).toEqual({ status: 200, body: { success: true } });
    const events = (await server.deps.events.journalOf(res.body.message_id)).map((entry) => entry.payload);
    expect(events.filter((event) => event.event === "sms_delivered")).toHaveLength(1);
    const row = (await server.deps.gateways.list()).find((g) => g.id === gateway.id);
    expect(row?.totalMessagesSent).toBe(1);
  });

  it("answers 404 for a report on an unknown message and 422 for an unknown status", async () => {
    const gateway = await phone();
    const gwKey = (await server.deps.keys.create({ scope: "gateway", name: "k", gatewayId: gateway.id })).key;
    expect(
      await rest(server, "POST", "/api/v1/gateway/sms/status", {
        key: gwKey,
        body: { message_id: "msg_nope", status: "sent" },
      }),
    ).toMatchObject({
      status: 404,
    });
    expect(
      await rest(server, "POST", "/api/v1/gateway/sms/status", {
        key: gwKey,
        body: { message_id: "msg_nope", status: "lost" },
      }),
    ).toMatchObject({
      status: 422,
      body: { error: "status must be sent, delivered or failed" },
    });
  });
});
