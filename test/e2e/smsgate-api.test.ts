import { execFile } from "node:child_process";
import { createHmac } from "node:crypto";
import { homedir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import ClientModule, { type HttpClient, type MessageState as LibraryState, ProcessState } from "android-sms-gateway";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SmsService } from "../../gen/smsgw/v1/sms_pb.js";
import {
  defaultSmsGateBehaviour,
  SmsGatePhone,
  type SmsGatePhoneBehaviour,
} from "../../src/simulator/smsgate-phone.js";
import { Receiver } from "../fixtures/receiver.js";
import { lacks } from "../fixtures/tools.js";
import {
  clientKey,
  doors,
  eventually,
  fastMessages,
  isolate,
  phoneRack,
  rest,
  startServer,
  withKey,
} from "../helpers.js";

// SMSGate's third-party API, driven by SMSGate's own client library (npm `android-sms-gateway`,
// pinned in package.json), against phones that speak the SMSGate app's protocol.

// The package ships ES modules without `"type": "module"`: TypeScript reads its types as CommonJS
// (the class under `.default`), Node loads it as an ES module (the class itself).
const Client = ("default" in ClientModule ? ClientModule.default : ClientModule) as typeof ClientModule.default;

/** A message's state as SMSGate's server answers it (the library's 3.0.0 types lack the newer fields). */
type MessageState = LibraryState & { states: Record<string, string>; deviceId: string; isHashed: boolean };

let server: Awaited<ReturnType<typeof startServer>>;
let registrationToken: string;
const streamPhones = phoneRack(() => server);
const started: SmsGatePhone[] = [];

beforeAll(async () => {
  server = await startServer({ ...fastMessages, WEBHOOK_ALLOW_PRIVATE_TARGETS: "true" }, { worker: true });
  registrationToken = (await server.deps.keys.create({ scope: "registration", name: "phones" })).key;
});
afterEach(async () => {
  for (const phone of started.splice(0)) phone.stop();
  await streamPhones.disconnectAll();
  await isolate(server);
});
afterAll(async () => server.stop());

/** A phone that signs up into an account of its own, or (`joining`) joins that phone's account. */
async function smsGatePhone(
  behaviour: Partial<SmsGatePhoneBehaviour> = {},
  joining?: SmsGatePhone,
): Promise<SmsGatePhone> {
  const phone = new SmsGatePhone(`${server.url}/api/mobile/v1`, registrationToken, {
    ...defaultSmsGateBehaviour,
    ...behaviour,
  });
  started.push(phone);
  if (joining !== undefined) await phone.register({ login: joining.login ?? "", password: joining.password ?? "" });
  await phone.start();
  return phone;
}

/** The HTTP client the library asks its user for, over fetch (as its README shows). */
const fetchClient: HttpClient = {
  get: (url, headers) => call("GET", url, undefined, headers),
  post: (url, body, headers) => call("POST", url, body, headers),
  put: (url, body, headers) => call("PUT", url, body, headers),
  patch: (url, body, headers) => call("PATCH", url, body, headers),
  delete: (url, headers) => call("DELETE", url, undefined, headers),
};

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`HTTP ${status}: ${JSON.stringify(body)}`);
  }
}

async function call<T>(method: string, url: string, body: unknown, headers: Record<string, string> = {}): Promise<T> {
  const response = await fetch(url, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  const parsed = text === "" ? undefined : (JSON.parse(text) as unknown);
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed as T;
}

const clientOf = (login: string, password: string, prefix = "/3rdparty/v1") =>
  new Client(login, password, fetchClient, `${server.url}${prefix}`);

const basic = (login: string, password: string) => `Basic ${Buffer.from(`${login}:${password}`).toString("base64")}`;

/** A call of the API without the library (what version 3.0.0 of it lacks: cancel, list, newer fields). */
const api = (
  method: string,
  path: string,
  authorization: string,
  body?: unknown,
  headers: Record<string, string> = {},
) =>
  rest(server, method, `/3rdparty/v1${path}`, {
    headers: { authorization, ...headers },
    ...(body === undefined ? {} : typeof body === "string" ? { rawBody: body } : { body }),
  });

describe("SMSGate's client library against smsgw", () => {
  it("sends one message to two recipients through a phone, each recipient reaching Delivered, visible through smsgw's REST and gRPC too", async () => {
    const phone = await smsGatePhone();
    const client = clientOf(phone.login ?? "", phone.password ?? "");
    const accepted = await client.send({
      message: "Hello from the library",
      phoneNumbers: ["+14155552671", "+14155552672"],
    });
    expect(accepted).toMatchObject({
      id: expect.stringMatching(/^[0-9a-z]{21}$/),
      state: "Pending",
      isHashed: false,
      isEncrypted: false,
      recipients: [
        { phoneNumber: "+14155552671", state: "Pending" },
        { phoneNumber: "+14155552672", state: "Pending" },
      ],
    });
    const delivered = await eventually(async () => {
      const state = (await client.getState(accepted.id)) as MessageState;
      return state.state === ProcessState.Delivered ? state : undefined;
    });
    expect(delivered.recipients).toEqual([
      { phoneNumber: "+14155552671", state: "Delivered" },
      { phoneNumber: "+14155552672", state: "Delivered" },
    ]);
    expect(Object.keys(delivered.states)).toEqual(["Pending", "Processed", "Sent", "Delivered"]);
    expect(Date.parse(delivered.states.Delivered ?? "")).toBeGreaterThanOrEqual(
      Date.parse(delivered.states.Sent ?? ""),
    );
    expect((delivered as unknown as { deviceId: string }).deviceId).toBe(phone.deviceId);
    // The phone was given each recipient as a message of its own.
    expect([...phone.messages.values()].map((local) => local.message.phoneNumbers).sort()).toEqual([
      ["+14155552671"],
      ["+14155552672"],
    ]);

    // The same message through smsgw's own doors: one message per recipient, the same states.
    const account = (await server.deps.keys.list()).find((key) => key.login === phone.login);
    expect(account).toBeDefined();
    const adminKey = await clientKey(server, "admin");
    const listed = await rest(server, "GET", "/api/v1/sms?to=%2B14155552671", { key: adminKey });
    const ownRow = (
      listed.body as { messages: { message_id: string; status: string; message: string }[] }
    ).messages.find((message) => message.message === "Hello from the library");
    expect(ownRow?.status).toBe("delivered");
    const { grpc } = doors(server, SmsService);
    const viaGrpc = await grpc.getSmsStatus({ messageId: ownRow?.message_id ?? "" }, withKey(adminKey));
    expect(viaGrpc.status).toBe("delivered");
    // And smsgw's own message, looked up by its id through this API.
    const viaThisApi = await api("GET", `/messages/${ownRow?.message_id}`, `Bearer ${adminKey}`);
    expect(viaThisApi.body).toMatchObject({ id: accepted.id, state: "Delivered" });
  });

  it("retries a recipient that failed on another phone of the account, and sends each of the others once", async () => {
    const working = await smsGatePhone();
    const failing = await smsGatePhone({ fail: true }, working);
    const client = clientOf(working.login ?? "", working.password ?? "");
    const numbers = ["+14155552601", "+14155552602", "+14155552603", "+14155552604"];
    const accepted = await client.send({ message: "Retried where it failed", phoneNumbers: numbers });
    const final = await eventually(async () => {
      const state = (await client.getState(accepted.id)) as MessageState;
      return state.state === ProcessState.Delivered ? state : undefined;
    });
    expect(final.recipients.map((recipient) => recipient.state)).toEqual([
      "Delivered",
      "Delivered",
      "Delivered",
      "Delivered",
    ]);
    // The failing phone was given some (the picker shares the work), and failed them.
    const failed = [...failing.messages.values()];
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((local) => local.state === "Failed")).toBe(true);
    // The working phone sent every recipient exactly once: the retried ones and the others.
    const sentBy = [...working.messages.values()].map((local) => local.message.phoneNumbers[0]);
    expect(sentBy.sort()).toEqual(numbers);
  });

  it("takes numbers as given with skipPhoneValidation, and refuses a send when no phone was seen within deviceActiveWithin", async () => {
    const phone = await smsGatePhone();
    const auth = basic(phone.login ?? "", phone.password ?? "");
    const raw = await api("POST", "/messages?skipPhoneValidation=true", auth, {
      message: "Raw",
      phoneNumbers: [" 12345 "],
    });
    expect(raw.status).toBe(202);
    expect((raw.body as MessageState).recipients).toEqual([{ phoneNumber: "12345", state: "Pending" }]);
    expect((await api("POST", "/messages", auth, { message: "Raw", phoneNumbers: ["12345"] })).status).toBe(400);
    const seen = await api("POST", `/messages?deviceActiveWithin=1`, auth, {
      message: "Seen",
      phoneNumbers: ["+14155552605"],
      deviceId: phone.deviceId,
    });
    expect(seen.status).toBe(202);
    await server.deps.orm.em
      .getConnection()
      .execute(
        "update gateways set last_heartbeat_at = now() - interval '3 hours', updated_at = now() - interval '3 hours' where device_id = ?",
        [phone.deviceId],
      );
    const stale = await api("POST", `/messages?deviceActiveWithin=2`, auth, {
      message: "Unseen",
      phoneNumbers: ["+14155552606"],
      deviceId: phone.deviceId,
    });
    expect(stale).toMatchObject({ status: 400, body: { message: "No device was active within the given period" } });
  });

  it("answers the deprecated paths and both prefixes, with Location, and refuses a repeated id with 409", async () => {
    const phone = await smsGatePhone();
    const auth = basic(phone.login ?? "", phone.password ?? "");
    const id = `order-${Date.now()}`;
    const first = await rest(server, "POST", "/api/3rdparty/v1/messages", {
      headers: { authorization: auth },
      body: { id, textMessage: { text: "One" }, phoneNumbers: ["+14155552673"] },
    });
    expect(first.status).toBe(202);
    expect(first.headers.get("location")).toBe(`/api/3rdparty/v1/messages/${id}`);
    const again = await api("POST", "/message", auth, { id, message: "Two", phoneNumbers: ["+14155552674"] });
    expect(again).toMatchObject({ status: 409, body: { message: "A message with this id already exists", code: 409 } });
    const viaAlias = await api("GET", `/message/${id}`, auth);
    expect(viaAlias).toMatchObject({ status: 200, body: { id, textMessage: { text: "One" } } });
    // Only the first was stored.
    expect((viaAlias.body as MessageState).recipients).toEqual([
      expect.objectContaining({ phoneNumber: "+14155552673" }),
    ]);
  });

  it("cancels a scheduled message, and refuses to cancel one that was sent", async () => {
    const phone = await smsGatePhone();
    const auth = basic(phone.login ?? "", phone.password ?? "");
    const scheduleAt = new Date(Date.now() + 3_600_000).toISOString();
    const scheduled = await api("POST", "/messages", auth, {
      textMessage: { text: "Later" },
      phoneNumbers: ["+14155552675", "+14155552676"],
      scheduleAt,
    });
    expect(scheduled.status).toBe(202);
    const { id } = scheduled.body as MessageState;
    const cancelled = await api("DELETE", `/messages/${id}`, auth);
    expect(cancelled).toMatchObject({
      status: 200,
      body: { id, state: "Cancelled", recipients: [{ state: "Cancelled" }, { state: "Cancelled" }] },
    });
    expect((await api("DELETE", `/message/${id}`, auth)).status).toBe(200);
    expect(phone.messages.size).toBe(0);

    const now = await clientOf(phone.login ?? "", phone.password ?? "").send({
      message: "Now",
      phoneNumbers: ["+14155552677"],
    });
    await eventually(
      async () =>
        ((await api("GET", `/messages/${now.id}`, auth)).body as MessageState).state === "Delivered" || undefined,
    );
    expect(await api("DELETE", `/messages/${now.id}`, auth)).toMatchObject({ status: 409, body: { code: 409 } });
  });

  it("keeps each credential's messages to itself, and lists them with X-Total-Count, filters and pages", async () => {
    const phone = await smsGatePhone();
    const auth = basic(phone.login ?? "", phone.password ?? "");
    const other = await clientKey(server);
    const mine = await api("POST", "/messages", auth, { message: "Mine", phoneNumbers: ["+14155552678"] });
    const theirs = await api("POST", "/messages", `Bearer ${other}`, {
      message: "Theirs",
      phoneNumbers: ["+14155552679"],
    });
    expect(theirs.status).toBe(202);
    const mineId = (mine.body as MessageState).id;
    expect((await api("GET", `/messages/${(theirs.body as MessageState).id}`, auth)).status).toBe(404);
    await eventually(
      async () =>
        ((await api("GET", `/messages/${mineId}`, auth)).body as MessageState).state === "Delivered" || undefined,
    );
    for (let i = 0; i < 3; i++) {
      await api("POST", "/messages", auth, {
        message: `Later ${i}`,
        phoneNumbers: ["+14155552680"],
        scheduleAt: new Date(Date.now() + 3_600_000).toISOString(),
      });
    }
    const all = await api("GET", "/messages", auth);
    expect(all.status).toBe(200);
    expect(all.headers.get("x-total-count")).toBe("4");
    expect((all.body as MessageState[]).map((state) => state.id)[3]).toBe(mineId);
    const page = await api("GET", "/messages?limit=2&offset=2&sort=-created_at", auth);
    expect((page.body as MessageState[]).length).toBe(2);
    expect(page.headers.get("x-total-count")).toBe("4");
    const delivered = await api(
      "GET",
      `/messages?state=Delivered&deviceId=${phone.deviceId}&includeContent=true`,
      auth,
    );
    expect(delivered.body).toEqual([expect.objectContaining({ id: mineId, textMessage: { text: "Mine" } })]);
    expect(delivered.headers.get("x-total-count")).toBe("1");
    const pending = await api("GET", "/messages?state=Pending&sort=created_at", auth);
    expect((pending.body as MessageState[]).length).toBe(3);
    expect(pending.body).toEqual(
      expect.not.arrayContaining([expect.objectContaining({ textMessage: expect.anything() })]),
    );
  });

  it("sends SIM choice, data SMS and encrypted content only through a phone running the app, carried unchanged", async () => {
    const stream = await streamPhones.connect();
    const phone = await smsGatePhone();
    const auth = basic(phone.login ?? "", phone.password ?? "");
    const sim = await api("POST", "/messages", auth, {
      message: "SIM 2",
      phoneNumbers: ["+14155552681"],
      simNumber: 2,
      withDeliveryReport: false,
      priority: 100,
    });
    const data = await api("POST", "/messages", auth, {
      dataMessage: { data: "AQID", port: 5000 },
      phoneNumbers: ["+14155552682"],
    });
    const secret = "$aes-256-cbc/pbkdf2-sha1$i=75000$c2FsdA==$Y2lwaGVy";
    const encrypted = await api("POST", "/messages", auth, {
      message: secret,
      phoneNumbers: ["$aes-256-cbc/pbkdf2-sha1$i=75000$c2FsdA==$bnVtYmVy"],
      isEncrypted: true,
    });
    for (const accepted of [sim, data, encrypted]) expect(accepted.status).toBe(202);
    for (const accepted of [sim, data, encrypted]) {
      const id = (accepted.body as MessageState).id;
      await eventually(
        async () =>
          ((await api("GET", `/messages/${id}`, auth)).body as MessageState).state === "Delivered" || undefined,
      );
    }
    expect(stream.tally.commands).toBe(0);
    const given = [...phone.messages.values()].map((local) => local.message);
    expect(given.find((message) => message.simNumber === 2)).toMatchObject({
      withDeliveryReport: false,
      priority: 100,
      textMessage: { text: "SIM 2" },
    });
    expect(given.find((message) => message.dataMessage !== undefined)).toMatchObject({
      dataMessage: { data: "AQID", port: 5000 },
    });
    expect(given.find((message) => message.dataMessage !== undefined)).not.toHaveProperty("textMessage");
    expect(given.find((message) => message.isEncrypted)).toMatchObject({
      message: secret,
      phoneNumbers: ["$aes-256-cbc/pbkdf2-sha1$i=75000$c2FsdA==$bnVtYmVy"],
    });
    const state = await api("GET", `/messages/${(encrypted.body as MessageState).id}`, auth);
    expect(state.body).toMatchObject({ isEncrypted: true, textMessage: { text: secret } });
  });

  it("lists and removes devices, serves health without a credential, lists received SMS, and has no logs", async () => {
    const phone = await smsGatePhone();
    const client = clientOf(phone.login ?? "", phone.password ?? "", "/api/3rdparty/v1");
    const devices = await client.getDevices();
    expect(devices).toEqual([expect.objectContaining({ id: phone.deviceId, name: "Google/sdk_gphone64" })]);
    expect(Object.keys(devices[0] ?? {})).toEqual(["id", "name", "createdAt", "updatedAt", "lastSeen", "simCards"]);
    expect(await clientOf("", "").getHealth()).toMatchObject({
      status: "pass",
      checks: { database: { status: "pass" } },
    });
    for (const probe of ["live", "ready", "startup"]) {
      expect((await rest(server, "GET", `/3rdparty/v1/health/${probe}`)).status).toBe(200);
      expect((await rest(server, "GET", `/health/${probe}`)).body).toMatchObject({ status: "pass" });
    }
    // Alive is alive: the process answers, whatever its dependencies do.
    expect((await rest(server, "GET", "/health/live")).body).toEqual({
      status: "pass",
      version: expect.any(String),
      releaseId: 0,
      checks: {},
    });
    expect((await rest(server, "GET", "/health")).body).toMatchObject({
      status: "pass",
      checks: { database: { status: "pass" } },
    });
    await phone.receive("+14155550100", "An answer");
    // In client-go v1.14's `IncomingMessage` shape, with the total.
    const inbox = await api("GET", `/inbox?deviceId=${phone.deviceId}`, basic(phone.login ?? "", phone.password ?? ""));
    expect(inbox.body).toEqual([
      {
        id: expect.stringMatching(/^msg_/),
        type: "SMS",
        sender: "+14155550100",
        contentPreview: "An answer",
        createdAt: expect.any(String),
      },
    ]);
    expect(inbox.headers.get("x-total-count")).toBe("1");
    const window = { since: new Date(Date.now() - 60_000).toISOString(), until: new Date().toISOString() };
    expect((await api("POST", "/inbox/refresh", basic(phone.login ?? "", phone.password ?? ""), window)).status).toBe(
      202,
    );
    await expect(client.getLogs()).rejects.toMatchObject({ status: 501 });
    // Another account does not know this phone; its own may remove it, and the phone is shut out.
    const stranger = await server.deps.keys.createAccount("stranger");
    await expect(clientOf(stranger.login, stranger.password).deleteDevice(phone.deviceId ?? "")).rejects.toMatchObject({
      status: 404,
    });
    await client.deleteDevice(phone.deviceId ?? "");
    expect(await client.getDevices()).toEqual([]);
    const shutOut = await rest(server, "GET", "/api/mobile/v1/message", {
      headers: { authorization: `Bearer ${phone.token}` },
    });
    expect(shutOut.status).toBe(401);
  });

  it("refuses what is wrong in SMSGate's error shape, never with a 500, and storing nothing", async () => {
    const phone = await smsGatePhone();
    const auth = basic(phone.login ?? "", phone.password ?? "");
    expect(await api("GET", "/messages", "Basic bm9ib2R5Om5vdGhpbmdoZXJlYXRhbGw=")).toMatchObject({
      status: 401,
      body: { message: "Unauthorized", code: 401 },
    });
    const gatewayKey = (await server.deps.keys.list()).find((key) => key.gatewayId !== null);
    expect(gatewayKey).toBeDefined();
    expect((await api("GET", "/messages", `Bearer ${phone.token}`)).status).toBe(403);
    const cases: [unknown, RegExp][] = [
      [{ phoneNumbers: ["+14155552683"] }, /No message content/],
      [{ message: "x", phoneNumbers: [] }, /phoneNumbers/],
      [{ message: "x", phoneNumbers: ["+14155552683", "+1 415 555 2683"] }, /repeat/],
      [{ message: "x", phoneNumbers: ["not a number"] }, /phoneNumbers\[0\]/],
      [
        { message: "x", phoneNumbers: ["+14155552683"], ttl: 60, validUntil: "2030-01-01T00:00:00Z" },
        /ttl and validUntil/,
      ],
      [{ message: "x", phoneNumbers: ["+14155552683"], simNumber: 4 }, /simNumber/],
      [{ message: "x", phoneNumbers: ["+14155552683"], priority: 128 }, /priority/],
      [{ message: "x", phoneNumbers: ["+14155552683"], id: "x".repeat(37) }, /id must be/],
      [{ dataMessage: { data: "not base64!", port: 1 }, phoneNumbers: ["+14155552683"] }, /base64/],
      [{ message: "x", textMessage: { text: "y" }, phoneNumbers: ["+14155552683"] }, /Only one/],
      ["{not json", /not valid JSON/],
      [
        { message: "x", phoneNumbers: Array.from({ length: 101 }, (_, i) => `+1415555${String(i).padStart(4, "0")}`) },
        /at most 100/,
      ],
    ];
    for (const [body, message] of cases) {
      const res = await api("POST", "/messages", auth, body, { "content-type": "application/json" });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((res.body as { message: string }).message).toMatch(message);
      expect((res.body as { code: number }).code).toBe(400);
    }
    expect((await api("GET", "/messages?state=Nope", auth)).status).toBe(400);
    expect((await api("GET", "/messages?limit=101", auth)).status).toBe(400);
    expect((await api("GET", "/messages/nothing-here", auth)).status).toBe(404);
    const listed = await api("GET", "/messages", auth);
    expect(listed.headers.get("x-total-count")).toBe("0");
  });

  it("creates, lists and deletes a webhook whose deliveries are SMSGate's, signed as SMSGate signs them", async () => {
    const receiver = await new Receiver().start();
    try {
      const phone = await smsGatePhone();
      const client = clientOf(phone.login ?? "", phone.password ?? "");
      const created = await client.registerWebhook({
        id: "hook-1",
        url: receiver.url,
        event: "sms:delivered",
      } as never);
      expect(created).toEqual({ id: "hook-1", deviceId: null, url: receiver.url, event: "sms:delivered" });
      await client.registerWebhook({ url: receiver.url, event: "sms:received" } as never);
      await client.registerWebhook({ id: "delivered", url: receiver.url, event: "sms:delivered" } as never);
      // Upserted by id.
      await client.registerWebhook({ id: "hook-1", url: receiver.url, event: "sms:sent" } as never);
      const listed = await client.getWebhooks();
      expect(listed.map((hook) => hook.event).sort()).toEqual(["sms:delivered", "sms:received", "sms:sent"]);
      // Another credential sees none of them.
      expect((await api("GET", "/webhooks", `Bearer ${await clientKey(server)}`)).body).toEqual([]);

      // The signing key is set, never shown (as SMSGate's server never shows it).
      const signingKey = "the-account-signing-key";
      await client.patchSettings({ webhooks: { signing_key: signingKey } } as never);
      expect(JSON.stringify(await client.getSettings())).not.toContain(signingKey);

      const sent = await client.send({ message: "Signed for", phoneNumbers: ["+14155552690"] });
      await phone.receive("+14155550101", "Incoming");
      const bodies = await eventually(async () => (receiver.requests.length >= 3 ? receiver.requests : undefined));
      for (const request of bodies) {
        const timestamp = String(request.headers["x-timestamp"]);
        const expected = createHmac("sha256", signingKey)
          .update(request.body + timestamp)
          .digest("hex");
        expect(request.headers["x-signature"]).toBe(expected);
        expect(Math.abs(Number(timestamp) - Date.now() / 1000)).toBeLessThan(60);
      }
      const events = bodies.map((request) => JSON.parse(request.body) as Record<string, unknown>);
      // A message's events (client-go's `SmsEventPayload`): the phone's own number is not known to smsgw.
      const outbound = { messageId: sent.id, phoneNumber: "+14155552690", sender: null, recipient: "+14155552690" };
      expect(events.find((event) => event.event === "sms:sent")).toEqual({
        id: expect.any(String),
        webhookId: "hook-1",
        event: "sms:sent",
        deviceId: phone.deviceId,
        payload: { ...outbound, simNumber: null, partsCount: 1, sentAt: expect.any(String) },
      });
      expect(events.find((event) => event.event === "sms:delivered")).toEqual({
        id: expect.any(String),
        webhookId: "delivered",
        event: "sms:delivered",
        deviceId: phone.deviceId,
        payload: { ...outbound, simNumber: null, deliveredAt: expect.any(String) },
      });
      expect(events.find((event) => event.event === "sms:received")).toEqual({
        id: expect.any(String),
        webhookId: expect.any(String),
        event: "sms:received",
        deviceId: phone.deviceId,
        payload: {
          messageId: expect.stringMatching(/^msg_/),
          message: "Incoming",
          phoneNumber: "+14155550101",
          sender: "+14155550101",
          recipient: "+14155550999",
          simNumber: 1,
          receivedAt: expect.any(String),
        },
      });

      // A new signing key signs from now on; deleted webhooks get nothing more.
      await client.patchSettings({ webhooks: { signing_key: "a-new-signing-key" } } as never);
      await phone.receive("+14155550102", "After the change");
      const after = await eventually(async () =>
        receiver.requests.find((request) => request.body.includes("After the change")),
      );
      expect(after.headers["x-signature"]).toBe(
        createHmac("sha256", "a-new-signing-key")
          .update(after.body + String(after.headers["x-timestamp"]))
          .digest("hex"),
      );
      for (const hook of await client.getWebhooks()) await client.deleteWebhook(hook.id ?? "");
      expect(await client.getWebhooks()).toEqual([]);
      const count = receiver.requests.length;
      await phone.receive("+14155550103", "Nobody listens");
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(receiver.requests.length).toBe(count);
      // The phone's pings reach a webhook that wants them, with its health report.
      await client.registerWebhook({ id: "pings", url: receiver.url, event: "system:ping" } as never);
      // The phone is told (`WebhooksUpdated`) and posts its pings from then on.
      await eventually(async () => phone.webhooks.some((hook) => hook.event === "system:ping") || undefined);
      await phone.ping({ status: "pass", checks: { battery: { observedValue: 80 } } });
      const ping = await eventually(async () =>
        receiver.requests
          .map((request) => JSON.parse(request.body) as Record<string, unknown>)
          .find((event) => event.event === "system:ping"),
      );
      expect(ping).toEqual({
        id: expect.any(String),
        webhookId: "pings",
        event: "system:ping",
        deviceId: phone.deviceId,
        payload: { health: { status: "pass", checks: { battery: { observedValue: 80 } } } },
      });
      await client.deleteWebhook("pings");
      // An event SMSGate does not have is refused clearly.
      expect(
        await api("POST", "/webhooks", basic(phone.login ?? "", phone.password ?? ""), {
          url: receiver.url,
          event: "sms:exploded",
        }),
      ).toMatchObject({
        status: 400,
        body: { message: expect.stringMatching(/event must be one of/) },
      });
    } finally {
      await receiver.stop();
    }
  });

  it("relays settings to the account's phones, which are told at once", async () => {
    const phone = await smsGatePhone();
    const client = clientOf(phone.login ?? "", phone.password ?? "");
    await client.patchSettings({
      messages: { send_interval_min: 5, send_interval_max: 10, limit_period: "PerHour", limit_value: 50 },
      ping: { interval_seconds: 60 },
    } as never);
    const settings = (await client.getSettings()) as unknown as Record<string, Record<string, unknown>>;
    expect(settings.messages).toEqual({
      send_interval_min: 5,
      send_interval_max: 10,
      limit_period: "PerHour",
      limit_value: 50,
    });
    expect(settings.ping).toEqual({ interval_seconds: 60 });
    await eventually(async () => (phone.settings.messages?.limit_value === 50 ? true : undefined));
    expect(phone.settings.ping).toEqual({ interval_seconds: 60 });
    const auth = basic(phone.login ?? "", phone.password ?? "");
    expect(await api("PUT", "/settings", auth, { logs: { lifetime_days: 3 } })).toMatchObject({ status: 400 });
    expect(await api("PATCH", "/settings", auth, { messages: { send_interval_min: -1 } })).toMatchObject({
      status: 400,
    });
  });

  it("gives smsgw's own contract the same capabilities: SIM choice, data SMS, encrypted content, one message of several recipients", async () => {
    await streamPhones.connect();
    const phone = await smsGatePhone();
    const key = await clientKey(server);
    const viaRest = await rest(server, "POST", "/api/v1/sms/send", {
      key,
      body: { to: "+14155552691", message: "From SIM 3", sim_number: 3, delivery_report: false },
    });
    expect(viaRest.status).toBe(202);
    const { grpc } = doors(server, SmsService);
    const viaGrpc = await grpc.sendSms({ to: "+14155552692", message: "AQIDBA==", dataPort: 2948 }, withKey(key));
    const group = await rest(server, "POST", "/api/v1/sms/send_batch", {
      key,
      body: { to: ["+14155552693", "+14155552694"], message: "Together", group_id: "newsletter-7" },
    });
    expect(group.status).toBe(202);
    const again = await rest(server, "POST", "/api/v1/sms/send_batch", {
      key,
      body: { to: ["+14155552695"], message: "Again", group_id: "newsletter-7" },
    });
    expect(again).toMatchObject({ status: 409, body: { error: "A message with this group_id already exists" } });
    // Repeated under its idempotency key, a grouped batch answers the same messages.
    const keyed = { to: ["+14155552696"], message: "Keyed", group_id: "keyed-1", idempotency_key: "k-1" };
    const first = await rest(server, "POST", "/api/v1/sms/send_batch", { key, body: keyed });
    const repeat = await rest(server, "POST", "/api/v1/sms/send_batch", { key, body: keyed });
    const ids = (res: { body: unknown }) =>
      (res.body as { messages: { message_id: string }[] }).messages.map((message) => message.message_id);
    expect(repeat.status).toBe(202);
    expect(ids(repeat)).toEqual(ids(first));
    for (const bad of [
      { to: "+14155552697", message: "x", sim_number: 0 },
      { to: "+14155552697", message: "%%", data_port: 1 },
      { to: "+14155552697", message: "AQID", data_port: 70000 },
    ]) {
      expect((await rest(server, "POST", "/api/v1/sms/send", { key, body: bad })).status).toBe(422);
    }

    const state = await eventually(async () => {
      const res = await api("GET", "/messages/newsletter-7", `Bearer ${key}`);
      return (res.body as MessageState).state === "Delivered" ? (res.body as MessageState) : undefined;
    });
    expect(state.recipients).toEqual([
      { phoneNumber: "+14155552693", state: "Delivered" },
      { phoneNumber: "+14155552694", state: "Delivered" },
    ]);
    const given = await eventually(async () => {
      const messages = [...phone.messages.values()].map((local) => local.message);
      return messages.some((message) => message.simNumber === 3) && messages.some((message) => message.dataMessage)
        ? messages
        : undefined;
    });
    expect(given.find((message) => message.simNumber === 3)).toMatchObject({ withDeliveryReport: false });
    expect(given.find((message) => message.dataMessage)).toMatchObject({
      id: viaGrpc.messageId,
      dataMessage: { data: "AQIDBA==", port: 2948 },
    });
    // (Each message goes to one phone: the SIM choice and the data SMS went to the app, not the stream phone.)
    expect((viaRest.body as { message_id: string }).message_id).toMatch(/^msg_/);
  });

  // SMSGate's own Go client library, as released: v1.14.4 sends text as `textMessage` (the body
  // SMSGate's docs show), v1.6.0 as `message`.
  for (const [version, binaryName] of [
    ["v1.14.4", "smsgate-go-client"],
    ["v1.6.0", "smsgate-go-client-v1.6"],
  ] as const) {
    it.skipIf(lacks("go"))(
      `works the same from SMSGate's Go client library (client-go ${version}, built by scripts/setup-smsgate-go-client.sh)`,
      async () => {
        const binary = join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "smsgw", "bin", binaryName);
        await promisify(execFile)("sh", ["scripts/setup-smsgate-go-client.sh"]);
        const phone = await smsGatePhone();
        const goClient = async (...args: string[]) => {
          const { stdout } = await promisify(execFile)(binary, args, {
            env: {
              ...process.env,
              ASG_ENDPOINT: `${server.url}/3rdparty/v1`,
              ASG_USERNAME: phone.login ?? "",
              ASG_PASSWORD: phone.password ?? "",
            },
          });
          return JSON.parse(stdout) as Record<string, unknown> & MessageState;
        };
        const receiver = await new Receiver().start();
        try {
          const accepted = await goClient("send", "+14155552698,+14155552699", `Hello from Go ${version}`);
          expect(accepted).toMatchObject({
            state: "Pending",
            recipients: [{ state: "Pending" }, { state: "Pending" }],
          });
          const delivered = await eventually(async () => {
            const state = await goClient("state", accepted.id);
            return state.state === "Delivered" ? state : undefined;
          });
          expect(delivered.recipients).toEqual([
            { phoneNumber: "+14155552698", state: "Delivered" },
            { phoneNumber: "+14155552699", state: "Delivered" },
          ]);
          // (v1.6's MessageState has no deviceId, nor its client a list of devices.)
          if (version === "v1.14.4") {
            expect(delivered.deviceId).toBe(phone.deviceId);
            expect(await goClient("devices")).toEqual([expect.objectContaining({ id: phone.deviceId })]);
          }
          expect(await goClient("webhooks", "register", "go-hook", receiver.url, "sms:received")).toMatchObject({
            id: "go-hook",
            event: "sms:received",
          });
          expect(await goClient("webhooks", "list")).toEqual([
            expect.objectContaining({ id: "go-hook", url: receiver.url }),
          ]);
          const signingKey = `go-signing-key-${version}`;
          await clientOf(phone.login ?? "", phone.password ?? "").patchSettings({
            webhooks: { signing_key: signingKey },
          } as never);
          await phone.receive("+14155550104", "For the Go client");
          const delivery = await eventually(async () => receiver.requests[0]);
          expect(delivery.headers["x-signature"]).toBe(
            createHmac("sha256", signingKey)
              .update(delivery.body + String(delivery.headers["x-timestamp"]))
              .digest("hex"),
          );
          await goClient("webhooks", "delete", "go-hook");
          expect(await goClient("webhooks", "list")).toEqual([]);
          // The same message through smsgw's own REST, with the same states.
          const adminKey = await clientKey(server, "admin");
          const listed = await rest(server, "GET", "/api/v1/sms?to=%2B14155552698", { key: adminKey });
          expect((listed.body as { messages: { message: string; status: string }[] }).messages).toContainEqual(
            expect.objectContaining({ message: `Hello from Go ${version}`, status: "delivered" }),
          );
        } finally {
          await receiver.stop();
        }
      },
      120_000,
    );
  }
});
