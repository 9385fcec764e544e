import { createHash } from "node:crypto";
import { adapters, type Consumer, createConsumer } from "@rails/actioncable";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
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

// The official client expects a browser: a WebSocket class and window events.
adapters.WebSocket = WebSocket;
const globals = globalThis as unknown as Record<string, unknown>;
globals.addEventListener ??= () => undefined;
globals.removeEventListener ??= () => undefined;

let server: Awaited<ReturnType<typeof startServer>>;
let key: string;
const consumers: Consumer[] = [];

beforeAll(async () => {
  server = await startServer(fastMessages, { worker: true });
  key = await clientKey(server);
});
afterEach(async () => {
  for (const consumer of consumers.splice(0)) consumer.disconnect();
  await isolate(server);
});
afterAll(async () => server.stop());

const cableUrl = (apiKey: string) => `${server.url.replace("http", "ws")}/cable?api_key=${apiKey}`;

type SendSms = { action: string; message_id: string; recipient: string; message: string };

/** A gateway app built for the original server: the official client, subscribed to GatewayChannel. */
async function cableDevice() {
  const gateway = await registeredGateway(server);
  const consumer = createConsumer(cableUrl(gateway.key));
  consumers.push(consumer);
  const received: SendSms[] = [];
  let connected = false;
  const subscription = consumer.subscriptions.create(
    { channel: "GatewayChannel", api_key_digest: createHash("sha256").update(gateway.key).digest("hex") },
    {
      connected: () => {
        connected = true;
      },
      received: (data) => received.push(data as SendSms),
    },
  );
  await eventually(async () => (connected ? true : undefined), 10_000, "the subscription to be confirmed");
  return { gateway, consumer, subscription, received };
}

async function send(message: string, gatewayId?: string) {
  const res = await rest(server, "POST", "/api/v1/sms/send", {
    key,
    body: { to: "+14155552671", message, ...(gatewayId ? { gateway_id: gatewayId } : {}) },
  });
  return (res.body as { message_id: string }).message_id;
}

const statusOf = async (id: string) =>
  ((await rest(server, "GET", `/api/v1/sms/status/${id}`, { key })).body as { status: string }).status;

describe("a device on Action Cable, with the official client", () => {
  it("receives send_sms for a message sent through REST, reports delivered, and the message is delivered", async () => {
    const device = await cableDevice();
    const id = await send("over the cable");
    const command = await eventually(async () => device.received.find((c) => c.message_id === id), 15_000, "send_sms");
    expect(command).toEqual({
      action: "send_sms",
      message_id: id,
      recipient: "+14155552671",
      message: "over the cable",
    });
    device.subscription.perform("heartbeat", { battery_level: 77, signal_strength: 3, messages_in_queue: 1 });
    device.subscription.perform("delivery_report", { message_id: id, status: "delivered" });
    await eventually(async () => ((await statusOf(id)) === "delivered" ? true : undefined), 15_000, "delivered");
    const row = (await server.deps.gateways.list()).find((g) => g.id === device.gateway.id);
    expect(row).toMatchObject({
      status: "online",
      totalMessagesSent: 1,
      metadata: { battery_level: 77, signal_strength: 3, messages_in_queue: 1 },
    });
  });

  it("stores an SMS the device reports with message_received", async () => {
    const device = await cableDevice();
    device.subscription.perform("message_received", {
      sender: "+14155550177",
      message: "Hello",
      timestamp: "2025-10-19T10:30:00Z",
    });
    const listed = await eventually(
      async () => {
        const page = (await rest(server, "GET", "/api/v1/sms/received?phone_number=%2B14155550177", { key })).body as {
          messages: Record<string, unknown>[];
        };
        return page.messages[0];
      },
      10_000,
      "the received SMS",
    );
    expect(listed).toMatchObject({ from: "+14155550177", message: "Hello" });
  });

  it("fails an in-flight message over to a stream-connected gateway when the socket drops", async () => {
    const device = await cableDevice();
    const id = await send("dropped cable", device.gateway.deviceId);
    await eventually(async () => device.received.find((c) => c.message_id === id), 15_000, "send_sms on the cable");
    const phone = await simulatedGateway(server);
    device.consumer.disconnect();
    await eventually(async () => ((await statusOf(id)) === "delivered" ? true : undefined), 20_000, "failover");
    expect(phone.commands.map((c) => c.messageId)).toContain(id);
    await phone.disconnect();
  });
});

/** A raw WebSocket client, to check the protocol frame by frame. */
async function raw(apiKey: string, protocols: string[] = ["actioncable-v1-json", "actioncable-unsupported"]) {
  const socket = new WebSocket(cableUrl(apiKey), protocols);
  const frames: Record<string, unknown>[] = [];
  socket.on("message", (data: Buffer) => frames.push(JSON.parse(data.toString("utf8")) as Record<string, unknown>));
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.on("open", () => resolve());
    socket.on("error", reject);
  });
  return { socket, frames, closed };
}

describe("the Action Cable protocol", () => {
  it("welcomes, pings every 3 seconds, confirms subscriptions echoing the identifier, and takes repeats harmlessly", async () => {
    const gateway = await registeredGateway(server);
    const client = await raw(gateway.key);
    expect(client.socket.protocol).toBe("actioncable-v1-json");
    await eventually(async () => (client.frames.some((f) => f.type === "welcome") ? true : undefined), 5000, "welcome");
    const identifier = '{"channel":"GatewayChannel" , "extra":  1}';
    client.socket.send(JSON.stringify({ command: "subscribe", identifier }));
    client.socket.send(JSON.stringify({ command: "subscribe", identifier }));
    await eventually(
      async () => (client.frames.filter((f) => f.type === "confirm_subscription").length === 2 ? true : undefined),
      5000,
      "two confirmations",
    );
    expect(client.frames.filter((f) => f.type === "confirm_subscription")).toEqual([
      { identifier, type: "confirm_subscription" },
      { identifier, type: "confirm_subscription" },
    ]);
    await eventually(
      async () => (client.frames.some((f) => f.type === "ping" && typeof f.message === "number") ? true : undefined),
      4000,
      "a ping",
    );
    const id = await send("once", gateway.deviceId);
    await eventually(
      async () => (client.frames.some((f) => (f.message as SendSms | undefined)?.message_id === id) ? true : undefined),
      15_000,
      "send_sms",
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(client.frames.filter((f) => (f.message as SendSms | undefined)?.message_id === id)).toHaveLength(1);
    client.socket.close();
  });

  it("rejects a subscription to another channel or with a wrong key digest", async () => {
    const gateway = await registeredGateway(server);
    const client = await raw(gateway.key);
    for (const identifier of ['{"channel":"ChatChannel"}', '{"channel":"GatewayChannel","api_key_digest":"00"}']) {
      client.socket.send(JSON.stringify({ command: "subscribe", identifier }));
      await eventually(
        async () => (client.frames.some((f) => f.identifier === identifier) ? true : undefined),
        5000,
        "an answer",
      );
      expect(client.frames.find((f) => f.identifier === identifier)).toEqual({
        identifier,
        type: "reject_subscription",
      });
    }
    client.socket.close();
  });

  it("disconnects a bad or revoked key with a reason and no reconnect", async () => {
    const revoked = await registeredGateway(server);
    const [row] = await server.deps.orm.em
      .getConnection()
      .execute<{ id: number }[]>("select id from api_keys where gateway_id = ?", [revoked.id]);
    await server.deps.keys.revoke(row?.id ?? 0);
    for (const apiKey of ["gw_live_nope", revoked.key]) {
      const client = await raw(apiKey);
      await client.closed;
      expect(client.frames).toEqual([{ type: "disconnect", reason: "unauthorized", reconnect: false }]);
    }
  });

  it("serves a native client that offers no subprotocol and subscribes before the welcome", async () => {
    const gateway = await registeredGateway(server);
    const socket = new WebSocket(cableUrl(gateway.key));
    const frames: Record<string, unknown>[] = [];
    socket.on("message", (data: Buffer) => frames.push(JSON.parse(data.toString("utf8")) as Record<string, unknown>));
    await new Promise<void>((resolve) => socket.on("open", () => resolve()));
    socket.send(JSON.stringify({ command: "subscribe", identifier: '{"channel":"GatewayChannel"}' }));
    await eventually(
      async () => (frames.some((f) => f.type === "confirm_subscription") ? true : undefined),
      5000,
      "confirmation",
    );
    expect(frames[0]).toEqual({ type: "welcome" });
    socket.close();
  });
});
