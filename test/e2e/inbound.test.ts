import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rfc3339 } from "../fixtures/documented.js";
import { clientKey, eventually, registeredGateway, rest, simulatedGateway, startServer } from "../helpers.js";

let server: Awaited<ReturnType<typeof startServer>>;
let key: string;
let gateway: { id: number; deviceId: string; key: string };

beforeAll(async () => {
  server = await startServer();
  key = await clientKey(server);
  gateway = await registeredGateway(server);
  // Each run starts from an empty inbox, so totals and pages are exact.
  await server.deps.orm.em.getConnection().execute("delete from inbound_messages");
});
afterAll(async () => server.stop());

const report = (body: Record<string, unknown>) =>
  rest(server, "POST", "/api/v1/gateway/sms/received", { key: gateway.key, body });
type Page = { messages: Record<string, unknown>[]; total: number; page: number; pages: number };
const list = async (query = "") =>
  (await rest(server, "GET", `/api/v1/sms/received${query}`, { key })) as { status: number; body: Page };

describe("POST /api/v1/gateway/sms/received", () => {
  it("stores the SMS, counts it on the gateway and answers the documented shape", async () => {
    const res = await report({
      sender: "+14155550100",
      message: "Hello, this is a test message",
      timestamp: "2025-10-19T10:30:00Z",
    });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body as object)).toEqual(["success", "message_id"]);
    expect(res.body).toEqual({ success: true, message_id: expect.stringMatching(/^msg_/) });
    const row = (await server.deps.gateways.list()).find((g) => g.id === gateway.id);
    expect(row).toMatchObject({ messagesReceivedToday: 1, totalMessagesReceived: 1 });
  });

  it("stores a repeated report once and answers it with the first message id", async () => {
    const body = { sender: "+14155550101", message: "retry me", timestamp: "2025-10-19T11:00:00Z" };
    const first = await report(body);
    const second = await report(body);
    expect((second.body as { message_id: string }).message_id).toBe((first.body as { message_id: string }).message_id);
    const withoutTime = { sender: "+14155550101", message: "no timestamp" };
    const a = await report(withoutTime);
    const b = await report(withoutTime);
    expect((b.body as { message_id: string }).message_id).toBe((a.body as { message_id: string }).message_id);
    expect((await list("?phone_number=%2B14155550101")).body.total).toBe(2);
  });

  it("keeps alphanumeric senders as they are, and refuses an empty sender with 400", async () => {
    expect((await report({ sender: "MYBANK", message: "Your balance" })).status).toBe(200);
    expect((await list("?phone_number=MYBANK")).status).toBe(422);
    expect(await report({ sender: "", message: "x" })).toMatchObject({
      status: 400,
      body: { error: "param is missing or the value is empty: sender" },
    });
  });

  it("stores an SMS a device reports over the stream", async () => {
    const phone = await simulatedGateway(server);
    phone.received("+14155550102", "via the stream");
    const found = await eventually(
      async () => {
        const page = (await list("?phone_number=%2B14155550102")).body;
        return page.total === 1 ? page.messages[0] : undefined;
      },
      10_000,
      "the streamed SMS",
    );
    expect(found).toMatchObject({ from: "+14155550102", message: "via the stream" });
    await phone.disconnect();
  });
});

describe("GET /api/v1/sms/received", () => {
  it("lists newest first in the documented shape, filtered by a normalised number and by since", async () => {
    for (let i = 0; i < 3; i++) {
      await report({ sender: "+14155550199", message: `m${i}`, timestamp: `2026-01-0${i + 1}T09:00:00Z` });
    }
    const res = await list("?phone_number=(415)%20555-0199");
    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual(["messages", "total", "page", "pages"]);
    expect(res.body.messages.map((m) => m.message)).toEqual(["m2", "m1", "m0"]);
    expect(Object.keys(res.body.messages[0] ?? {})).toEqual(["message_id", "from", "message", "received_at"]);
    expect(res.body.messages[0]).toEqual({
      message_id: expect.stringMatching(/^msg_/),
      from: "+14155550199",
      message: "m2",
      received_at: "2026-01-03T09:00:00Z",
    });
    expect(res.body).toMatchObject({ total: 3, page: 1, pages: 1 });
    const since = await list("?phone_number=%2B14155550199&since=2026-01-01T12:00:00Z");
    expect(since.body.messages.map((m) => m.message)).toEqual(["m2", "m1"]);
  });

  it("pages with limit and page, with exact total and pages", async () => {
    const all = (await list()).body.total;
    const page2 = await list("?limit=2&page=2");
    expect(page2.body).toMatchObject({ total: all, page: 2, pages: Math.ceil(all / 2) });
    expect(page2.body.messages).toHaveLength(Math.min(2, Math.max(0, all - 2)));
    const first = (await list("?limit=2&page=1")).body.messages.map((m) => m.message_id);
    expect(page2.body.messages.map((m) => m.message_id)).not.toContain(first[0]);
    expect(page2.body.messages.every((m) => typeof m.received_at === "string" && rfc3339.test(m.received_at))).toBe(
      true,
    );
  });

  it("clamps limit to 100 and refuses a page below 1 or an invalid number", async () => {
    const clamped = await list("?limit=500");
    expect(clamped.status).toBe(200);
    expect(clamped.body.pages).toBe(Math.ceil(clamped.body.total / 100));
    expect(await list("?page=0")).toMatchObject({ status: 422, body: { error: "page must be at least 1" } });
    expect(await list("?phone_number=12")).toMatchObject({
      status: 422,
      body: { error: "phone_number is not a valid phone number" },
    });
    expect(await list("?since=yesterday")).toMatchObject({ status: 400 });
  });
});
