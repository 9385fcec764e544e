import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { Receiver } from "../fixtures/receiver.js";
import { clientKey, eventually, fastMessages, isolate, phoneRack, rest, startServer } from "../helpers.js";

let server: Awaited<ReturnType<typeof startServer>>;
let key: string;
let admin: string;
let receiver: Receiver;
const phones = phoneRack(() => server);

beforeAll(async () => {
  server = await startServer(
    { ...fastMessages, WEBHOOK_ALLOW_PRIVATE_TARGETS: "true", SECRET_KEY_BASE: "otp-secrecy" },
    { worker: true },
  );
  key = await clientKey(server);
  admin = await clientKey(server, "admin");
  receiver = await new Receiver().start();
  await isolate(server);
});
afterAll(async () => {
  await phones.disconnectAll();
  await receiver.stop();
  await server.stop();
});

/** Every string and byte of a Temporal history as text, payloads decoded (its toJSON would base64 them). */
function historyText(value: unknown): string {
  if (value instanceof Uint8Array) return Buffer.from(value).toString("utf8");
  if (typeof value === "string") return value;
  if (typeof value !== "object" || value === null) return String(value);
  return Object.values(value)
    .map((item) => historyText(item))
    .join(" ");
}

describe("an OTP code exists in clear only in the command handed to the phone", () => {
  it("is found nowhere in the database, the webhook bodies or the message's workflow history", async () => {
    const webhook = await rest(server, "POST", "/api/v1/admin/webhooks", {
      key: admin,
      body: {
        url: receiver.url,
        events: ["sms_received", "sms_sent", "sms_delivered", "sms_failed", "gateway_online", "gateway_offline"],
      },
    });
    expect(webhook.status).toBe(201);
    const phone = await phones.connect();
    const sent = await rest(server, "POST", "/api/v1/otp/send", {
      key,
      body: { phone_number: "+14155557001", code_length: 10 },
    });
    expect(sent.status).toBe(200);
    const messageId = (sent.body as { message_id: string }).message_id;

    const command = await eventually(async () => phone.commands.find((c) => c.messageId === messageId));
    const code = /(\d{10})/.exec(command.message)?.[1] ?? "";
    expect(command.message).toBe(`Your authentication code is ${code}. It expires in 5 minutes.`);
    const masked = "Your authentication code is **********. It expires in 5 minutes.";

    await eventually(async () => (receiver.events("sms_delivered").length > 0 ? true : undefined));
    const verified = await rest(server, "POST", "/api/v1/otp/verify", {
      key,
      body: { phone_number: "+14155557001", code },
    });
    expect(verified.body).toMatchObject({ success: true, verified: true });

    // The webhooks got the masked text.
    for (const event of ["sms_sent", "sms_delivered"]) {
      expect(receiver.events(event).find((body) => body.message_id === messageId)?.message).toBe(masked);
    }
    for (const request of receiver.requests) expect(request.body).not.toContain(code);

    // Every table, every column, each row as text (what pg_dump --data-only would write, without a
    // client of the server's own major version).
    const everything = await everyRowAsText(inject("databaseUrl"));
    expect(everything).toContain(masked);
    expect(everything).not.toContain(code);

    // The workflow's history (activity inputs and results) carries the masked text only.
    const history = await server.deps.temporal.workflow.getHandle(`message/${messageId}`).fetchHistory();
    const text = historyText(history);
    expect(text).toContain("**********");
    expect(text).not.toContain(code);
  });
});

/** Every row of every table of the public schema, as text, one table after another. */
async function everyRowAsText(databaseUrl: string): Promise<string> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows: tables } = await client.query<{ name: string }>(
      "select quote_ident(table_name) as name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'",
    );
    expect(tables.length).toBeGreaterThan(5);
    const texts: string[] = [];
    for (const { name } of tables) {
      const { rows } = await client.query<{ row: string }>(`select t::text as row from ${name} t`);
      texts.push(...rows.map((each) => each.row));
    }
    return texts.join("\n");
  } finally {
    await client.end();
  }
}
