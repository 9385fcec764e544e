import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Backlog } from "../../src/modules/messages/backlog.js";
import { clientKey, isolate, rest, startServer, unique } from "../helpers.js";

let server: Awaited<ReturnType<typeof startServer>>;

// No worker and no gateway: accepted messages stay queued, so the backlog only grows.
beforeAll(async () => {
  server = await startServer({ BACKLOG_MAX_PER_KEY: "2", BACKLOG_MAX_TOTAL: "1000", BACKLOG_RETRY_AFTER_SECONDS: "3" });
  await isolate(server);
});
afterAll(async () => {
  await isolate(server);
  await server.stop();
});

const text = unique("back-pressure");
const send = (key: string, to: string) =>
  rest(server, "POST", "/api/v1/sms/send", { key, body: { to, message: `${text} ${to}` } });

describe("back-pressure", () => {
  it("answers 503 with Retry-After and the error body once a key's backlog is full, and stores nothing", async () => {
    const key = await clientKey(server);
    expect((await send(key, "+14155550201")).status).toBe(202);
    expect((await send(key, "+14155550202")).status).toBe(202);
    const refused = await send(key, "+14155550203");
    expect(refused.status).toBe(503);
    expect(refused.body).toEqual({ error: "Too many messages are waiting to be sent; try again shortly" });
    expect(refused.headers.get("retry-after")).toBe("3");
    const rows: { count: number }[] = await server.deps.orm.em
      .getConnection()
      .execute("select count(*)::int as count from messages where body = ?", [`${text} +14155550203`]);
    expect(rows[0]?.count).toBe(0);
    // Another application's key is not held back by this one's backlog.
    expect((await send(await clientKey(server), "+14155550204")).status).toBe(202);
  });

  it("refuses SMSGate's third-party API the same way, in its shape: a message of three recipients when two fit", async () => {
    const account = await server.deps.keys.createAccount("back-pressure");
    const authorization = `Basic ${Buffer.from(`${account.login}:${account.password}`).toString("base64")}`;
    const refused = await rest(server, "POST", "/3rdparty/v1/messages", {
      headers: { authorization },
      body: { message: `${text} group`, phoneNumbers: ["+14155550211", "+14155550212", "+14155550213"] },
    });
    expect(refused.status).toBe(503);
    expect(refused.body).toEqual({ message: "Too many messages are waiting to be sent; try again shortly", code: 503 });
    expect(refused.headers.get("retry-after")).toBe("3");
    const rows: { count: number }[] = await server.deps.orm.em
      .getConnection()
      .execute("select count(*)::int as count from messages where body = ?", [`${text} group`]);
    expect(rows[0]?.count).toBe(0);
    const fits = await rest(server, "POST", "/3rdparty/v1/messages", {
      headers: { authorization },
      body: { message: `${text} pair`, phoneNumbers: ["+14155550214", "+14155550215"] },
    });
    expect(fits.status).toBe(202);
  });

  it("says that it refuses while it does, so that the starter stops making way for senders", async () => {
    const backlog = new Backlog(
      server.deps.messageRepository,
      { perKey: 1, total: 10, retryAfterSeconds: 1 },
      pino({ level: "silent" }),
    );
    try {
      backlog.admit(-1, 1);
      expect(backlog.refusing()).toBe(false);
      expect(() => backlog.admit(-1, 1)).toThrow("Too many messages are waiting to be sent");
      expect(backlog.refusing()).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      expect(backlog.refusing()).toBe(false);
    } finally {
      backlog.stop();
    }
  });
});
