import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SmsService } from "../../gen/smsgw/v1/sms_pb.js";
import {
  defaultSmsGateBehaviour,
  SmsGatePhone,
  type SmsGatePhoneBehaviour,
} from "../../src/simulator/smsgate-phone.js";
import { rfc3339 } from "../fixtures/documented.js";
import { Receiver } from "../fixtures/receiver.js";
import {
  clientKey,
  doors,
  eventually,
  fastMessages,
  isolate,
  messageStatus,
  phoneRack,
  rest,
  startServer,
  untilStatus,
  withKey,
} from "../helpers.js";

// Phones running SMSGate's Android app (private-server mode), simulated from the app's own
// behaviour (src/simulator/smsgate-phone.ts), sending through smsgw beside its own phones.

let server: Awaited<ReturnType<typeof startServer>>;
let key: string;
let registrationToken: string;
const streamPhones = phoneRack(() => server);
const started: SmsGatePhone[] = [];

beforeAll(async () => {
  server = await startServer({ ...fastMessages, WEBHOOK_ALLOW_PRIVATE_TARGETS: "true" }, { worker: true });
  key = await clientKey(server);
  registrationToken = (await server.deps.keys.create({ scope: "registration", name: "phones" })).key;
});
afterEach(async () => {
  for (const phone of started.splice(0)) phone.stop();
  await streamPhones.disconnectAll();
  await isolate(server);
});
afterAll(async () => server.stop());

const base = (prefix = "/api/mobile/v1") => `${server.url}${prefix}`;

async function smsGatePhone(behaviour: Partial<SmsGatePhoneBehaviour> = {}, prefix?: string): Promise<SmsGatePhone> {
  const phone = new SmsGatePhone(base(prefix), registrationToken, { ...defaultSmsGateBehaviour, ...behaviour });
  started.push(phone);
  await phone.start();
  return phone;
}

async function send(to: string, message: string) {
  const res = await rest(server, "POST", "/api/v1/sms/send", { key, body: { to, message } });
  expect(res.status).toBe(202);
  return (res.body as { message_id: string }).message_id;
}

const statusOf = (messageId: string) => messageStatus(server, key, messageId);
const until = (messageId: string, status: string, timeoutMs?: number) =>
  untilStatus(server, key, messageId, status, timeoutMs);

async function mobile(method: string, path: string, authorization?: string, body?: unknown) {
  const response = await fetch(`${base()}${path}`, {
    method,
    headers: {
      ...(authorization === undefined ? {} : { authorization }),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? undefined : (JSON.parse(text) as unknown) };
}

describe("a phone running the SMSGate app", () => {
  it("registers with the registration token and becomes a gateway with its SIM cards and app in its metadata", async () => {
    const phone = await smsGatePhone();
    expect(phone.deviceId).toMatch(/^[0-9a-z]{21}$/);
    expect(phone.login).toMatch(/^[0-9A-Z]{6}$/);
    expect(phone.password).toMatch(/^[0-9a-z]{14}$/);
    const gateway = (await server.deps.gateways.list()).find((g) => g.deviceId === phone.deviceId);
    expect(gateway).toMatchObject({ status: "online", name: "Google/sdk_gphone64" });
    expect(gateway?.metadata).toMatchObject({
      app: "SMSGate",
      account: phone.login,
      sim_cards: [{ slotIndex: 0, simNumber: 1, phoneNumber: "*******1234" }],
    });
    // Its account is a client key, listed with its login; the registration token is listed too.
    const keys = await server.deps.keys.list();
    expect(keys.find((k) => k.login === phone.login)).toMatchObject({ scope: "client" });
    expect(keys.some((k) => k.scope === "registration" && k.name === "phones")).toBe(true);
    // The app's shapes, key by key: registration, a fetched message, the public address.
    const registered = await mobile("POST", "/device", `Bearer ${registrationToken}`, { name: "Shape/1" });
    expect(registered.status).toBe(201);
    expect(Object.keys(registered.body as object)).toEqual(["id", "token", "login", "password"]);
    expect(await mobile("GET", "/device")).toEqual({ status: 200, body: { externalIp: "127.0.0.1" } });
    // Connected through its events stream: the console shows the channel as SSE.
    expect(server.deps.connections.openOf(gateway?.id ?? 0)?.channel).toBe("sse");
  });

  it("registers a fleet at once: more phones than the database pool has connections, every one 201", async () => {
    // Each registration opens an account in its transaction; none may wait for a second connection.
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        mobile("POST", "/device", `Bearer ${registrationToken}`, { name: `Fleet/${i}` }),
      ),
    );
    expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 201));
    expect(new Set(answers.map((answer) => (answer.body as { login: string }).login)).size).toBe(30);
  }, 60_000);

  it("sends what REST, gRPC and Connect accept, told by its events stream, and ends delivered with the right times", async () => {
    const phone = await smsGatePhone();
    const viaRest = await send("+14155552671", "Hello from REST");
    const { grpc, connect } = doors(server, SmsService);
    const viaGrpc = (await grpc.sendSms({ to: "+14155552672", message: "Hello from gRPC" }, withKey(key))).messageId;
    const viaConnect = (await connect.sendSms({ to: "+14155552673", message: "Hello from Connect" }, withKey(key)))
      .messageId;
    for (const id of [viaRest, viaGrpc, viaConnect]) {
      const final = await until(id, "delivered");
      expect(final).toMatchObject({
        sent_at: expect.stringMatching(rfc3339),
        delivered_at: expect.stringMatching(rfc3339),
      });
      expect(Date.parse(String(final.delivered_at))).toBeGreaterThanOrEqual(Date.parse(String(final.sent_at)));
    }
    expect(phone.events.filter((event) => event.name === "MessageEnqueued").length).toBeGreaterThanOrEqual(1);
    expect(phone.events.every((event) => event.name !== "MessageEnqueued" || event.data === "null")).toBe(true);
    const fetched = [...phone.messages.values()].map((local) => local.message);
    expect(fetched.map((message) => message.textMessage?.text).sort()).toEqual([
      "Hello from Connect",
      "Hello from REST",
      "Hello from gRPC",
    ]);
    expect(Object.keys(fetched[0] ?? {})).toEqual([
      "id",
      "message",
      "textMessage",
      "phoneNumbers",
      "isEncrypted",
      "withDeliveryReport",
      "priority",
      "validUntil",
      "createdAt",
      "state",
    ]);
    expect(fetched[0]).toMatchObject({
      phoneNumbers: [expect.stringMatching(/^\+1415555267\d$/)],
      isEncrypted: false,
      withDeliveryReport: true,
      state: "Pending",
      validUntil: expect.stringMatching(rfc3339),
      createdAt: expect.stringMatching(rfc3339),
    });
    const events = (await server.deps.events.journalOf(viaRest)).map((entry) => entry.payload);
    expect(events.map((event) => event.event)).toEqual(["sms_sent", "sms_delivered"]);
    expect(events[0]).toMatchObject({ gateway_id: phone.deviceId });
  });

  it("answers under /mobile/v1 too, and a phone that only polls gets its messages on its next poll", async () => {
    const phone = await smsGatePhone({ events: false }, "/mobile/v1");
    const id = await send("+14155552674", "Polled");
    // No events stream: nothing tells it; its next pull finds the message.
    await eventually(async () => {
      await phone.pull();
      return phone.messages.has(id) ? true : undefined;
    }, 15_000);
    await until(id, "delivered");
    expect(phone.events).toEqual([]);
  });

  it("reports Failed with the phone's error as the attempt's error", async () => {
    const phone = await smsGatePhone({ fail: true });
    const id = await send("+14155552675", "Will fail");
    await eventually(async () => (phone.messages.get(id)?.state === "Failed" ? true : undefined));
    const attempts = (await rest(server, "GET", `/api/v1/sms/${id}/attempts`, { key })).body;
    expect(JSON.stringify(attempts)).toContain("Send result: RESULT_ERROR_GENERIC_FAILURE");
  });

  it("is not given a message another phone holds, and a snapshot for it changes nothing", async () => {
    const phone = await smsGatePhone({ autoReport: false });
    const id = await send("+14155552676", "Mine");
    await eventually(async () => (phone.messages.has(id) ? true : undefined));
    const other = await smsGatePhone({ autoReport: false });
    const foreign = await mobile("PATCH", "/message", `Bearer ${other.token}`, [{ id, state: "Delivered" }]);
    expect(foreign.status).toBe(204);
    expect((await statusOf(id)).status).not.toBe("delivered");
    // Processed: the phone holds it; fetched again, it is not served again.
    await phone.move(id, "Processed");
    const again = await mobile("GET", "/message?order=fifo", `Bearer ${phone.token}`);
    expect(again.body).toEqual([]);
    await phone.move(id, "Sent");
    await until(id, "sent");
    await phone.move(id, "Delivered");
    await until(id, "delivered");
    // A stale snapshot changes nothing.
    await phone.move(id, "Sent");
    expect((await statusOf(id)).status).toBe("delivered");
  });

  it("tells the phone on its events stream when a message it fetched is cancelled, and the phone's Cancelled ends it", async () => {
    const phone = await smsGatePhone({ autoReport: false });
    const id = await send("+14155552679", "Never mind");
    await eventually(async () => (phone.messages.has(id) ? true : undefined));
    const cancelled = await rest(server, "POST", `/api/v1/sms/${id}/cancel`, { key });
    expect(cancelled.status).toBe(200);
    await eventually(async () => (phone.messages.get(id)?.state === "Cancelled" ? true : undefined), 5_000);
    expect(phone.events.find((event) => event.name === "MessageCancelled")?.data).toBe(
      JSON.stringify({ messageId: id }),
    );
    expect((await statusOf(id)).status).toBe("cancelled");
  });

  it("ends a message the phone cancelled", async () => {
    const phone = await smsGatePhone({ autoReport: false });
    const id = await send("+14155552677", "Cancel me");
    await eventually(async () => (phone.messages.has(id) ? true : undefined));
    await phone.move(id, "Cancelled");
    await until(id, "cancelled");
  });

  it("fails over from an SMSGate phone that goes silent to a stream phone, and back", async () => {
    const silent = await smsGatePhone({ autoReport: false });
    const id = await send("+14155552678", "Fail over");
    await eventually(async () => (silent.messages.has(id) ? true : undefined));
    silent.stop();
    const stream = await streamPhones.connect();
    await until(id, "delivered", 30_000);
    expect(stream.commands.map((command) => command.messageId)).toContain(id);
    // And back: a stream phone that takes a command and goes before acknowledging it.
    await stream.disconnect();
    const quiet = await streamPhones.connect({ autoReport: false, ack: false });
    const back = await send("+14155552680", "And back");
    await eventually(async () => (quiet.commands.some((command) => command.messageId === back) ? true : undefined));
    const phone = await smsGatePhone();
    await quiet.disconnect();
    await until(back, "delivered", 30_000);
    expect(phone.messages.has(back)).toBe(true);
  });

  it("keeps a message its phone fetched while that phone stays connected, past the dispatch timeout", async () => {
    const holder = await smsGatePhone({ autoReport: false });
    const id = await send("+14155552681", "Held");
    await eventually(async () => (holder.messages.has(id) ? true : undefined));
    const stream = await streamPhones.connect();
    // MESSAGE_DISPATCH_TIMEOUT_MS is 4 s here: well past it, the message is still the first phone's.
    await new Promise((resolve) => setTimeout(resolve, 7_000));
    expect(stream.commands.map((command) => command.messageId)).not.toContain(id);
    const holderId = await server.deps.gateways.idOf(holder.deviceId ?? "");
    expect(await server.deps.messageRepository.current(id)).toMatchObject({
      status: "dispatched",
      gateway_id: holderId,
    });
    await holder.send(id);
    await until(id, "delivered");
    expect(stream.commands.map((command) => command.messageId)).not.toContain(id);
  });

  it("closes the events stream of a phone whose token is revoked, and answers its calls 401", async () => {
    const phone = await smsGatePhone();
    expect(phone.streaming).toBe(true);
    const gateway = (await server.deps.gateways.list()).find((g) => g.deviceId === phone.deviceId);
    const own = (await server.deps.keys.list()).find((k) => k.gatewayId === gateway?.id);
    expect(own).toMatchObject({ scope: "gateway" });
    await server.deps.keys.revoke(own?.id ?? 0);
    await eventually(async () => (phone.streaming ? undefined : true), 1_000, "the events stream to close");
    const refused = await mobile("GET", "/message", `Bearer ${phone.token}`);
    expect(refused).toEqual({ status: 401, body: { message: "Unauthorized" } });
    // Nor does it post received SMS any more, signed as they are.
    expect(await phone.receive("+14155550124", "after revocation")).toEqual([401]);
  });

  it("is the devices' traffic: its calls, however many at once, never count as clients sending hard", async () => {
    const phone = await smsGatePhone({ autoReport: false });
    const calls = (count: number, path: string, authorization: string) =>
      Promise.all(Array.from({ length: count }, () => rest(server, "GET", path, { headers: { authorization } })));
    // Clients' calls in flight together do count (the starter makes way for them)…
    await new Promise((resolve) => setTimeout(resolve, 300));
    await calls(16, "/api/v1/sms/received", `Bearer ${key}`);
    expect(server.deps.load.busy).toBe(true);
    // …a phone's fetches do not: they are its own work, as a stream's frames are.
    await new Promise((resolve) => setTimeout(resolve, 300));
    await calls(16, "/api/mobile/v1/message", `Bearer ${phone.token}`);
    expect(server.deps.load.busy).toBe(false);
  });

  it("adds a phone to an account with Basic login:password, and with a sign-in code", async () => {
    const first = await smsGatePhone();
    const second = new SmsGatePhone(base(), "", defaultSmsGateBehaviour);
    started.push(second);
    await second.register({ login: first.login ?? "", password: first.password ?? "" });
    expect(second.login).toBe(first.login);
    expect(second.password).toBeUndefined();
    const { code, validUntil } = await first.userCode();
    expect(code).toMatch(/^\d{6}$/);
    expect(Date.parse(validUntil)).toBeGreaterThan(Date.now());
    const third = new SmsGatePhone(base(), "", defaultSmsGateBehaviour);
    started.push(third);
    await third.register({ code });
    expect(third.login).toBe(first.login);
    // A code works once.
    const reused = await mobile("POST", "/device", `Code ${code}`, { name: "x" });
    expect(reused.status).toBe(401);
    const gateways = await server.deps.gateways.list();
    for (const phone of [second, third]) {
      expect(gateways.find((g) => g.deviceId === phone.deviceId)?.metadata).toMatchObject({ account: first.login });
    }
    // The user changes the account's password from a phone: the old one no longer signs in, the new one does.
    const old = first.password ?? "";
    await first.changePassword("a sentence only I know");
    const basic = (password: string) => `Basic ${Buffer.from(`${first.login}:${password}`).toString("base64")}`;
    expect((await mobile("GET", "/user/code", basic(old))).status).toBe(401);
    expect((await mobile("GET", "/user/code", basic("a sentence only I know"))).status).toBe(200);
    const wrong = await mobile("PATCH", "/user/password", `Bearer ${second.token}`, {
      currentPassword: old,
      newPassword: "another long enough one",
    });
    expect(wrong).toEqual({ status: 401, body: { message: "failed to change password" } });
    const short = await mobile("PATCH", "/user/password", `Bearer ${second.token}`, {
      currentPassword: "a sentence only I know",
      newPassword: "short",
    });
    expect(short.status).toBe(400);
  });
});

describe("what phones running the SMSGate app are told to do", () => {
  it("is set by an admin for one phone or every one, told at once, and never shows the signing key", async () => {
    const admin = await clientKey(server, "admin");
    const phone = await smsGatePhone();
    const other = await smsGatePhone();
    const one = await rest(server, "PATCH", "/api/v1/admin/smsgate/settings", {
      key: admin,
      body: {
        gateway_id: phone.deviceId,
        settings: { ping_interval_seconds: 60, limit_period: "PerHour", limit_value: 50, send_interval_max_seconds: 5 },
      },
    });
    expect(one.status).toBe(200);
    expect(one.body).toEqual({
      phones: [
        {
          gateway_id: phone.deviceId,
          // The REST door writes each field of the contract; those never set are null.
          settings: {
            notification_channel: null,
            ping_interval_seconds: 60,
            send_interval_min_seconds: null,
            send_interval_max_seconds: 5,
            limit_period: "PerHour",
            limit_value: 50,
          },
        },
      ],
    });
    // Told on its events stream, the phone reads its settings again; the other phone is not told.
    await eventually(async () => (phone.settings.ping?.interval_seconds === 60 ? true : undefined), 5_000);
    expect(phone.events.some((event) => event.name === "SettingsUpdated" && event.data === "null")).toBe(true);
    expect(phone.settings).toEqual({
      gateway: { notification_channel: "SSE_ONLY" },
      webhooks: { signing_key: expect.stringMatching(/^[0-9a-f]{32}$/) },
      ping: { interval_seconds: 60 },
      messages: { send_interval_max: 5, limit_period: "PerHour", limit_value: 50 },
    });
    expect(other.events.some((event) => event.name === "SettingsUpdated")).toBe(false);
    // Every phone.
    const every = await rest(server, "PATCH", "/api/v1/admin/smsgate/settings", {
      key: admin,
      body: { settings: { notification_channel: "AUTO" } },
    });
    const phones = (every.body as { phones: { gateway_id: string }[] }).phones.map((p) => p.gateway_id);
    expect(phones).toEqual(expect.arrayContaining([phone.deviceId, other.deviceId]));
    await eventually(async () => (other.settings.gateway?.notification_channel === "AUTO" ? true : undefined), 5_000);
    const listed = await rest(server, "GET", `/api/v1/admin/smsgate/settings?gateway_id=${phone.deviceId}`, {
      key: admin,
    });
    expect(JSON.stringify(listed.body)).not.toContain("signing");
    expect(listed.body).toMatchObject({ phones: [{ settings: { notification_channel: "AUTO", limit_value: 50 } }] });
    // Bad settings change nothing.
    for (const settings of [
      { limit_period: "Weekly" },
      { send_interval_min_seconds: 10 },
      { ping_interval_seconds: -1 },
    ]) {
      const refused = await rest(server, "PATCH", "/api/v1/admin/smsgate/settings", {
        key: admin,
        body: { gateway_id: phone.deviceId, settings },
      });
      expect(refused.status).toBe(422);
    }
    const unknown = await rest(server, "PATCH", "/api/v1/admin/smsgate/settings", {
      key: admin,
      body: { gateway_id: "nobody", settings: {} },
    });
    expect(unknown.status).toBe(422);
    expect((await rest(server, "GET", "/api/v1/admin/smsgate/settings", { key })).status).toBe(403);
  });
});

describe("SMS a phone running the SMSGate app receives", () => {
  it("are posted to smsgw as the app's signed webhooks, stored once, listed, and fire sms_received", async () => {
    const admin = await clientKey(server, "admin");
    const receiver = await new Receiver().start();
    const hook = await rest(server, "POST", "/api/v1/admin/webhooks", {
      key: admin,
      body: { url: receiver.url, events: ["sms_received"] },
    });
    expect(hook.status).toBe(201);
    try {
      const phone = await smsGatePhone();
      // smsgw asked the phone for its received SMS, at its own address, signed with a key of the phone's own
      // (and for nothing its account has no webhook for: no pings, MMS or starts).
      expect(phone.webhooks.map((webhook) => webhook.event).sort()).toEqual(["sms:data-received", "sms:received"]);
      expect(phone.webhooks[0]?.url).toBe(`${server.url}/api/mobile/v1/webhooks/received`);
      expect(phone.settings.webhooks?.signing_key).toMatch(/^[0-9a-f]{32}$/);
      const messageId = `inbound-${Date.now()}`;
      const sender = `+1415555${String(Date.now()).slice(-4)}`;
      // The app retries a webhook that was not answered: the same SMS is stored once.
      expect(await phone.receive(sender, "Hello smsgw", { messageId })).toEqual([200]);
      expect(await phone.receive(sender, "Hello smsgw", { messageId })).toEqual([200]);
      // The very same signed request again is a replay, and is refused.
      expect(await phone.receive(sender, "Replayed", { replay: true })).toEqual([200, 401]);
      const list = await rest(server, "GET", `/api/v1/sms/received?phone_number=${encodeURIComponent(sender)}`, {
        key,
      });
      const messages = (list.body as { messages: { message: string }[] }).messages.map((m) => m.message);
      expect(messages.sort()).toEqual(["Hello smsgw", "Replayed"]);
      await eventually(async () => (receiver.requests.length >= 2 ? true : undefined), 15_000, "sms_received webhooks");
      const events = receiver.requests.map((request) => JSON.parse(request.body) as Record<string, unknown>);
      expect(events.find((event) => event.message === "Hello smsgw")).toMatchObject({
        event: "sms_received",
        from: sender,
        gateway_id: phone.deviceId,
      });
      // A webhook signed with another key, or long ago, is refused.
      const forged = await fetch(phone.webhooks[0]?.url ?? "", {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-timestamp": String(Math.floor(Date.now() / 1000)),
          "x-signature": "0".repeat(64),
        },
        body: JSON.stringify({ id: "x", webhookId: "x", event: "sms:received", deviceId: phone.deviceId, payload: {} }),
      });
      expect(forged.status).toBe(401);
      expect(await forged.json()).toEqual({ message: "Unauthorized" });
    } finally {
      const id = (hook.body as { webhook: { id: number } }).webhook.id;
      await rest(server, "DELETE", `/api/v1/admin/webhooks/${id}`, { key: admin });
      await receiver.stop();
    }
  });
});

describe("bad input on the mobile API", () => {
  it("answers the app's error shape, never a 500", async () => {
    expect(await mobile("POST", "/device", undefined, { name: "x" })).toEqual({
      status: 401,
      body: { message: "Unauthorized" },
    });
    expect((await mobile("POST", "/device", "Bearer reg_live_nope", { name: "x" })).status).toBe(401);
    // A gateway key is not a registration token, and a registration token is no device token.
    expect((await mobile("GET", "/message", `Bearer ${registrationToken}`)).status).toBe(401);
    expect((await mobile("GET", "/events", "Bearer nope")).status).toBe(401);
    const phone = await smsGatePhone({ autoReport: false, events: false });
    const auth = `Bearer ${phone.token}`;
    const bad = [
      await mobile("PATCH", "/message", auth, "{not json"),
      await mobile("PATCH", "/message", auth, { id: "x" }),
      await mobile("PATCH", "/message", auth, [{ id: "x", state: "Teleported" }]),
      await mobile("PATCH", "/message", auth, [{ id: "", state: "Sent" }]),
      await mobile("PATCH", "/message", auth, [{ id: "x\u0000", state: "Sent" }]),
      await mobile("GET", "/message?order=random", auth),
      await mobile("PATCH", "/device", auth, { id: phone.deviceId, simCards: "many" }),
      await mobile("POST", "/device", `Bearer ${registrationToken}`, [1, 2]),
    ];
    for (const res of bad) {
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ message: expect.any(String) });
    }
    expect(await mobile("PATCH", "/device", auth, { id: "someone-else" })).toEqual({
      status: 403,
      body: { message: "Forbidden" },
    });
    expect(await mobile("GET", "/nowhere", auth)).toEqual({ status: 404, body: { message: "Not found" } });
    // Nothing was half-written: the phone's settings and webhooks still answer.
    expect(await mobile("GET", "/settings", auth)).toMatchObject({
      status: 200,
      body: { gateway: { notification_channel: "SSE_ONLY" } },
    });
    expect((await mobile("GET", "/webhooks", auth)).status).toBe(200);
  });
});
