import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  defaultSmsGateBehaviour,
  SmsGatePhone,
  type SmsGatePhoneBehaviour,
} from "../../src/simulator/smsgate-phone.js";
import { Receiver } from "../fixtures/receiver.js";
import { eventually, fastMessages, isolate, rest, startServer } from "../helpers.js";

// SMSGate's accounts as SMSGate's server keeps them (`userID` on every query of
// android-sms-gateway/server): what one account sends, lists, receives and sets is its own; its
// signed tokens (client-go's `GenerateToken`), the ten webhook events of the app
// (`WebHookEvent.kt`), `Cancelling` for a phone that polls, and the inbox export.

let server: Awaited<ReturnType<typeof startServer>>;
let registrationToken: string;
const started: SmsGatePhone[] = [];

beforeAll(async () => {
  server = await startServer({ ...fastMessages, WEBHOOK_ALLOW_PRIVATE_TARGETS: "true" }, { worker: true });
  registrationToken = (await server.deps.keys.create({ scope: "registration", name: "phones" })).key;
});
afterEach(async () => {
  for (const phone of started.splice(0)) phone.stop();
  await isolate(server);
});
afterAll(async () => server.stop());

async function smsGatePhone(behaviour: Partial<SmsGatePhoneBehaviour> = {}): Promise<SmsGatePhone> {
  const phone = new SmsGatePhone(`${server.url}/api/mobile/v1`, registrationToken, {
    ...defaultSmsGateBehaviour,
    ...behaviour,
  });
  started.push(phone);
  await phone.start();
  return phone;
}

const basicOf = (phone: SmsGatePhone) =>
  `Basic ${Buffer.from(`${phone.login ?? ""}:${phone.password ?? ""}`).toString("base64")}`;

/** A call of the third-party API as an account (Basic) or with a bearer token. */
const api = (method: string, path: string, authorization: string, body?: unknown) =>
  rest(server, method, `/3rdparty/v1${path}`, {
    headers: { authorization },
    ...(body === undefined ? {} : { body }),
  });

type State = { id: string; state: string; deviceId: string; recipients: { phoneNumber: string; state: string }[] };

const delivered = (authorization: string, id: string) =>
  eventually(async () => {
    const answer = await api("GET", `/messages/${id}`, authorization);
    return (answer.body as State).state === "Delivered" ? (answer.body as State) : undefined;
  });

describe("SMSGate accounts", () => {
  it("keep their messages, phones, inbox, webhooks and settings to themselves", async () => {
    const phoneA = await smsGatePhone();
    const phoneB = await smsGatePhone();
    const a = basicOf(phoneA);
    const b = basicOf(phoneB);
    // Both phones are connected and idle: every one of A's messages still goes to A's phone only.
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const sent = await api("POST", "/messages", a, {
        textMessage: { text: `For A ${i}` },
        phoneNumbers: [`+1415555270${i}`, `+1415555271${i}`],
      });
      expect(sent.status).toBe(202);
      ids.push((sent.body as State).id);
    }
    for (const id of ids) expect((await delivered(a, id)).deviceId).toBe(phoneA.deviceId);
    expect(phoneA.messages.size).toBe(12);
    expect(phoneB.messages.size).toBe(0);

    // Lists and ids: B sees none of A's.
    expect(((await api("GET", "/devices", a)).body as { id: string }[]).map((device) => device.id)).toEqual([
      phoneA.deviceId,
    ]);
    expect(((await api("GET", "/devices", b)).body as { id: string }[]).map((device) => device.id)).toEqual([
      phoneB.deviceId,
    ]);
    expect((await api("GET", `/messages/${ids[0]}`, b)).status).toBe(404);
    expect((await api("DELETE", `/messages/${ids[0]}`, b)).status).toBe(404);
    expect((await api("GET", "/messages", b)).headers.get("x-total-count")).toBe("0");
    expect((await api("DELETE", `/devices/${phoneA.deviceId}`, b)).status).toBe(404);
    expect((await api("GET", `/inbox?deviceId=${phoneA.deviceId}`, b)).status).toBe(404);
    // B may not send through A's phone.
    const through = await api("POST", "/messages", b, {
      textMessage: { text: "Through A" },
      phoneNumbers: ["+14155552799"],
      deviceId: phoneA.deviceId,
    });
    expect(through).toMatchObject({ status: 400, body: { message: "device not found" } });

    // What A's phone receives reaches A's inbox and A's webhooks, not B's.
    const receiverA = await new Receiver().start();
    const receiverB = await new Receiver().start();
    try {
      for (const [auth, receiver] of [
        [a, receiverA],
        [b, receiverB],
      ] as const) {
        expect((await api("POST", "/webhooks", auth, { url: receiver.url, event: "sms:received" })).status).toBe(201);
      }
      await phoneA.receive("+14155550277", "Only for A");
      await eventually(async () => receiverA.requests[0]);
      const inboxA = (await api("GET", "/inbox", a)).body as { contentPreview: string }[];
      expect(inboxA.map((message) => message.contentPreview)).toEqual(["Only for A"]);
      expect((await api("GET", "/inbox", b)).body).toEqual([]);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(receiverB.requests).toEqual([]);
    } finally {
      await receiverA.stop();
      await receiverB.stop();
    }

    // Settings: B's change reaches B's phone only.
    expect((await api("PATCH", "/settings", b, { ping: { interval_seconds: 60 } })).status).toBe(200);
    await eventually(async () => (phoneB.settings.ping?.interval_seconds === 60 ? true : undefined));
    await phoneA.syncSettings();
    expect(phoneA.settings.ping).toBeUndefined();
  });

  it("replaces settings with PUT, merges them with PATCH, and never shows the signing key", async () => {
    const phone = await smsGatePhone();
    const auth = basicOf(phone);
    await api("PATCH", "/settings", auth, { messages: { limit_period: "PerHour", limit_value: 50 } });
    const merged = await api("PATCH", "/settings", auth, {
      ping: { interval_seconds: 300 },
      webhooks: { signing_key: "never-shown-key" },
    });
    expect(merged.body).toEqual({
      gateway: { notification_channel: "SSE_ONLY" },
      messages: { limit_period: "PerHour", limit_value: 50 },
      ping: { interval_seconds: 300 },
    });
    const replaced = await api("PUT", "/settings", auth, { messages: { limit_period: "PerDay", limit_value: 9 } });
    expect(replaced.body).toEqual({
      gateway: { notification_channel: "SSE_ONLY" },
      messages: { limit_period: "PerDay", limit_value: 9 },
    });
    expect(JSON.stringify((await api("GET", "/settings", auth)).body)).not.toContain("never-shown-key");
    await eventually(async () => (phone.settings.messages?.limit_value === 9 ? true : undefined));
    expect(phone.settings.ping).toBeUndefined();
  });
});

describe("SMSGate's signed tokens", () => {
  it("issue a token of some scopes, refresh it once, and revoke it", async () => {
    const phone = await smsGatePhone();
    const auth = basicOf(phone);
    const issued = await api("POST", "/auth/token", auth, { ttl: 600, scopes: ["messages:send", "messages:read"] });
    expect(issued).toMatchObject({
      status: 201,
      body: {
        id: expect.stringMatching(/^[0-9a-z]{21}$/),
        token_type: "Bearer",
        access_token: expect.stringMatching(/^[\w-]+\.[\w-]+\.[\w-]+$/),
        refresh_token: expect.any(String),
        expires_at: expect.any(String),
      },
    });
    const pair = issued.body as { id: string; access_token: string; refresh_token: string; expires_at: string };
    expect(Date.parse(pair.expires_at) - Date.now()).toBeLessThanOrEqual(600_000);
    const bearer = `Bearer ${pair.access_token}`;
    // Within its scopes it is the account; past them, 403.
    const sent = await api("POST", "/messages", bearer, {
      textMessage: { text: "With a token" },
      phoneNumbers: ["+14155552780", "+14155552781"],
    });
    expect(sent.status).toBe(202);
    expect((await delivered(bearer, (sent.body as State).id)).deviceId).toBe(phone.deviceId);
    expect(await api("GET", "/messages", bearer)).toMatchObject({
      status: 403,
      body: { message: "scope required: messages:list" },
    });
    expect((await api("POST", "/auth/token", bearer, { scopes: ["messages:send"] })).status).toBe(403);
    // A refresh token is no access token, and is good once.
    expect((await api("GET", `/messages/${(sent.body as State).id}`, `Bearer ${pair.refresh_token}`)).status).toBe(401);
    const refreshed = await api("POST", "/auth/token/refresh", `Bearer ${pair.refresh_token}`);
    expect(refreshed.status).toBe(201);
    expect((await api("POST", "/auth/token/refresh", `Bearer ${pair.refresh_token}`)).status).toBe(401);
    const next = refreshed.body as { id: string; access_token: string };
    expect((await api("GET", `/messages/${(sent.body as State).id}`, `Bearer ${next.access_token}`)).status).toBe(200);
    // Revoked: its access token stops working; another account cannot revoke it.
    const stranger = await smsGatePhone();
    expect((await api("DELETE", `/auth/token/${next.id}`, basicOf(stranger))).status).toBe(404);
    expect((await api("DELETE", `/auth/token/${next.id}`, auth)).status).toBe(204);
    expect((await api("GET", `/messages/${(sent.body as State).id}`, `Bearer ${next.access_token}`)).status).toBe(401);
    // Bad requests are 400, a forged token 401.
    expect((await api("POST", "/auth/token", auth, { scopes: [] })).status).toBe(400);
    expect((await api("POST", "/auth/token", auth, { scopes: ["everything:now"] })).status).toBe(400);
    const forged = `${pair.access_token.slice(0, -4)}AAAA`;
    expect((await api("GET", "/devices", `Bearer ${forged}`)).status).toBe(401);
  });
});

describe("SMSGate's webhook events", () => {
  it("reach the account's webhooks for every event the app has, with SMSGate's payload fields", async () => {
    const receiver = await new Receiver().start();
    try {
      const phone = await smsGatePhone();
      const auth = basicOf(phone);
      const events = [
        "sms:received",
        "sms:data-received",
        "mms:received",
        "mms:downloaded",
        "sms:sent",
        "sms:delivered",
        "sms:failed",
        "sms:cancelled",
        "system:ping",
        "app:started",
      ];
      for (const event of events) {
        expect((await api("POST", "/webhooks", auth, { id: event, url: receiver.url, event })).status).toBe(201);
      }
      // The phone is told, and posts its own events from then on.
      await eventually(async () => (phone.webhooks.length === 6 ? true : undefined));
      const body = (event: string) =>
        eventually(async () =>
          receiver.requests
            .map((request) => JSON.parse(request.body) as { event: string; payload: Record<string, unknown> })
            .find((delivery) => delivery.event === event),
        );
      const sent = await api("POST", "/messages", auth, {
        textMessage: { text: "Sent" },
        phoneNumbers: ["+14155552790"],
        simNumber: 1,
      });
      await phone.receiveData("+14155550190", "AQID");
      // As the app posts it (`MmsReceivedPayload.kt`): relayed to the webhook unchanged.
      const mms = {
        messageId: "mms-1",
        transactionId: "T1",
        sender: "+14155550191",
        subject: "Photo",
        size: 1024,
        contentClass: "IMAGE_BASIC",
        receivedAt: new Date().toISOString(),
      };
      await phone.post("mms:received", mms);
      await phone.post("mms:downloaded", { messageId: "mms-1", body: "Look", attachments: [] });
      await phone.post("app:started", { simCards: [{ slotIndex: 0, simNumber: 1 }] });
      await phone.ping();
      await phone.receive("+14155550192", "Hi");
      expect((await body("sms:sent")).payload).toMatchObject({
        messageId: (sent.body as State).id,
        recipient: "+14155552790",
        simNumber: 1,
        partsCount: 1,
      });
      expect((await body("sms:delivered")).payload).toMatchObject({ recipient: "+14155552790", simNumber: 1 });
      expect((await body("sms:data-received")).payload).toMatchObject({
        data: "AQID",
        sender: "+14155550190",
        recipient: "+14155550999",
        simNumber: 1,
      });
      expect((await body("sms:received")).payload).toMatchObject({ message: "Hi", sender: "+14155550192" });
      expect((await body("mms:received")).payload).toEqual(mms);
      expect((await body("mms:downloaded")).payload).toEqual({ messageId: "mms-1", body: "Look", attachments: [] });
      expect((await body("app:started")).payload).toEqual({ simCards: [{ slotIndex: 0, simNumber: 1 }] });
      expect((await body("system:ping")).payload).toEqual({ health: { status: "pass", checks: {} } });

      // Failed and cancelled.
      const failing = await smsGatePhone({ fail: true });
      const failingAuth = basicOf(failing);
      await api("POST", "/webhooks", failingAuth, { url: receiver.url, event: "sms:failed" });
      await api("POST", "/messages", failingAuth, { textMessage: { text: "Fails" }, phoneNumbers: ["+14155552791"] });
      expect((await body("sms:failed")).payload).toMatchObject({
        recipient: "+14155552791",
        reason: "Send result: RESULT_ERROR_GENERIC_FAILURE",
      });
      const later = await api("POST", "/messages", auth, {
        textMessage: { text: "Cancelled" },
        phoneNumbers: ["+14155552792"],
        scheduleAt: new Date(Date.now() + 3_600_000).toISOString(),
      });
      expect((await api("DELETE", `/messages/${(later.body as State).id}`, auth)).status).toBe(200);
      expect((await body("sms:cancelled")).payload).toMatchObject({
        messageId: (later.body as State).id,
        recipient: "+14155552792",
        cancelledAt: expect.any(String),
      });
    } finally {
      await receiver.stop();
    }
  });
});

describe("A phone that polls", () => {
  it("is served a message cancelled after it fetched it as Cancelling, until it reports Cancelled", async () => {
    const phone = await smsGatePhone({ events: false, autoReport: false });
    const auth = basicOf(phone);
    const sent = await api("POST", "/messages", auth, {
      textMessage: { text: "Cancel me" },
      phoneNumbers: ["+14155552793"],
    });
    const id = (sent.body as State).id;
    const local = await eventually(async () => {
      await phone.pull();
      return [...phone.messages.values()][0];
    });
    expect(local.message.state).toBe("Pending");
    const cancelled = await api("DELETE", `/messages/${id}`, auth);
    expect((cancelled.body as State).state).toBe("Cancelled");
    // Its next poll says so; it cancels what it had not sent, and reports it.
    const polled = await rest(server, "GET", "/api/mobile/v1/message", {
      headers: { authorization: `Bearer ${phone.token}` },
    });
    expect(polled.body).toEqual([expect.objectContaining({ id: local.message.id, state: "Cancelling" })]);
    await phone.pull();
    await eventually(async () => (phone.messages.get(local.message.id)?.state === "Cancelled" ? true : undefined));
    await eventually(async () => {
      const again = await rest(server, "GET", "/api/mobile/v1/message", {
        headers: { authorization: `Bearer ${phone.token}` },
      });
      return (again.body as unknown[]).length === 0 ? true : undefined;
    });
  });
});

describe("An inbox export", () => {
  it("delivers the stored SMS of the window again to the account's webhook, and asks its phones", async () => {
    const phone = await smsGatePhone();
    const auth = basicOf(phone);
    const since = new Date(Date.now() - 1000).toISOString();
    await phone.receive("+14155550194", "Before the hook");
    const receiver = await new Receiver().start();
    try {
      await api("POST", "/webhooks", auth, { url: receiver.url, event: "sms:received" });
      const until = new Date(Date.now() + 1000).toISOString();
      for (const path of ["/inbox/refresh", "/messages/inbox/export"]) {
        const answer = await api("POST", path, auth, { deviceId: phone.deviceId, since, until });
        expect(answer.status, path).toBe(202);
      }
      const deliveries = await eventually(async () => (receiver.requests.length >= 2 ? receiver.requests : undefined));
      for (const delivery of deliveries) {
        expect(JSON.parse(delivery.body)).toMatchObject({
          event: "sms:received",
          deviceId: phone.deviceId,
          payload: { message: "Before the hook", sender: "+14155550194" },
        });
      }
      const asked = phone.events.filter((event) => event.name === "MessagesExportRequested");
      expect(asked).toHaveLength(2);
      // SMSGate's `MessagesExportRequested` data: strings, the times in RFC 3339 to the second.
      expect(JSON.parse(asked[0]?.data ?? "{}")).toEqual({
        since: since.replace(/\.\d{3}Z$/, "Z"),
        until: until.replace(/\.\d{3}Z$/, "Z"),
        messageTypes: "SMS",
        webhookDelivery: "Individual",
        triggerWebhooks: "true",
      });
      // What the phone posted again is stored once: the inbox still holds one.
      expect((await api("GET", "/inbox", auth)).headers.get("x-total-count")).toBe("1");
      expect((await api("POST", "/inbox/refresh", auth, { since: until, until: since })).status).toBe(400);
    } finally {
      await receiver.stop();
    }
  });
});

describe("Send bodies of SMSGate's docs", () => {
  it("are taken as SMSGate takes them, and what SMSGate refuses is 400", async () => {
    const phone = await smsGatePhone();
    const auth = basicOf(phone);
    const ok = async (body: Record<string, unknown>, query = "") => {
      const answer = await api("POST", `/messages${query}`, auth, { phoneNumbers: ["+14155552795"], ...body });
      expect(answer.status, JSON.stringify(body)).toBe(202);
      return answer.body as State;
    };
    await ok({ message: "Legacy message" });
    await ok({ textMessage: { text: "x".repeat(65_535) } });
    await ok({ dataMessage: { data: "SGVsbG8=", port: 53739 }, simNumber: 2 });
    await ok({ textMessage: { text: "Options" }, ttl: 3600, withDeliveryReport: false, priority: 100 });
    await ok({ textMessage: { text: "Until" }, validUntil: new Date(Date.now() + 60_000).toISOString() });
    await ok({ textMessage: { text: "Later" }, scheduleAt: new Date(Date.now() + 60_000).toISOString() });
    await ok({ textMessage: { text: "Mine" }, deviceId: phone.deviceId });
    await ok({ textMessage: { text: "$aes-256-cbc/pbkdf2-sha1$i=75000$c2FsdA==$Y2lwaGVy" }, isEncrypted: true });
    const raw = await ok({ textMessage: { text: "Raw" }, phoneNumbers: ["12345"] }, "?skipPhoneValidation=true");
    expect(raw.recipients).toEqual([{ phoneNumber: "12345", state: "Pending" }]);
    await ok({ textMessage: { text: "Seen" } }, "?deviceActiveWithin=1");
    for (const [body, message] of [
      [{ textMessage: { text: "x".repeat(65_536) } }, /too long/],
      [{ textMessage: { text: "Past" }, scheduleAt: new Date(Date.now() - 1000).toISOString() }, /scheduleAt/],
      [{ textMessage: { text: "Device" }, deviceId: "x".repeat(22) }, /deviceId/],
      [{ textMessage: { text: "Priority" }, priority: -129 }, /priority/],
      [{ textMessage: { text: "Long" }, phoneNumbers: ["1".repeat(129)] }, /phoneNumbers\[0\]/],
    ] as const) {
      const answer = await api("POST", "/messages", auth, { phoneNumbers: ["+14155552795"], ...body });
      expect(answer.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect((answer.body as { message: string }).message).toMatch(message);
    }
    // The deprecated list path.
    const listed = await api("GET", "/message?limit=2", auth);
    expect(listed.status).toBe(200);
    expect(listed.body).toHaveLength(2);
  });
});
