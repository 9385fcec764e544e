import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NewMessage } from "../src/modules/messages/message.repository.js";
import type { Running } from "../src/serve.js";
import { newMessageId } from "../src/shared/ids.js";
import { startServer, unique } from "./helpers.js";

// Sends that arrive together are stored by one statement (against real PostgreSQL): each still gets
// its own row, or the earlier one for a repeated idempotency key, and keeps its place in the list.
describe("storing messages sent at the same moment", () => {
  let server: Running & { url: string };
  let keyId: number;

  const message = (overrides: Partial<NewMessage> = {}): NewMessage => ({
    id: newMessageId(),
    clientKeyId: keyId,
    recipient: "+14155552671",
    body: "together",
    priority: 0,
    sendAt: null,
    expiresAt: new Date(Date.now() + 3_600_000),
    preferredGatewayId: null,
    metadata: JSON.stringify({ order: 'it\'s "quoted", {braced}' }),
    idempotencyKey: null,
    digest: "d".repeat(64),
    sealedBody: null,
    ...overrides,
  });

  beforeAll(async () => {
    server = await startServer();
    keyId = (await server.deps.keys.create({ scope: "client", name: unique("inserts") })).record.id;
  });
  afterAll(async () => server.stop());

  it("stores them in one statement, each with its own values", async () => {
    const messages = Array.from({ length: 12 }, (_, i) =>
      message({
        body: `together ${i}`,
        priority: i % 3,
        sendAt: i === 4 ? new Date("2030-01-02T03:04:05.678Z") : null,
      }),
    );
    const rows = await Promise.all(messages.map((m) => server.deps.messageRepository.insert(m)));
    expect(rows.map((row) => row?.id)).toEqual(messages.map((m) => m.id));
    expect(rows.map((row) => row?.body)).toEqual(messages.map((m) => m.body));
    const stored: { id: string; xmin: string; send_at: Date | null; metadata: unknown; priority: number }[] =
      await server.deps.orm.em
        .getConnection()
        .execute("select id, xmin::text, send_at, metadata, priority from messages where id in (?)", [
          messages.map((m) => m.id),
        ]);
    stored.sort((a, b) => messages.findIndex((m) => m.id === a.id) - messages.findIndex((m) => m.id === b.id));
    expect(stored[4]?.send_at && new Date(stored[4].send_at).toISOString()).toBe("2030-01-02T03:04:05.678Z");
    expect(stored[0]?.metadata).toEqual({ order: 'it\'s "quoted", {braced}' });
    expect(stored.map((row) => row.priority)).toEqual(messages.map((m) => m.priority));
    // One statement wrote them all.
    expect(new Set(stored.map((row) => row.xmin)).size).toBe(1);
    expect(stored).toHaveLength(messages.length);
  });

  it("stores one message for an idempotency key repeated among them, and none for one used before", async () => {
    const used = unique("used");
    const before = await server.deps.messageRepository.insert(message({ idempotencyKey: used }));
    expect(before).toBeDefined();
    const repeated = unique("repeated");
    const messages = [
      message({ idempotencyKey: repeated }),
      message(),
      message({ idempotencyKey: repeated }),
      message({ idempotencyKey: used }),
    ];
    const rows = await Promise.all(messages.map((m) => server.deps.messageRepository.insert(m)));
    expect(rows.map((row) => row?.id)).toEqual([messages[0]?.id, messages[1]?.id, undefined, undefined]);
    const found = await server.deps.messageRepository.findByIdempotencyKey(keyId, repeated);
    expect(found?.id).toBe(messages[0]?.id);
  });

  it("fails only the message that cannot be stored, and stores the rest", async () => {
    const messages = [message(), message({ recipient: "+1".padEnd(300, "5") }), message()];
    const results = await Promise.allSettled(messages.map((m) => server.deps.messageRepository.insert(m)));
    expect(results.map((result) => result.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    const stored: { id: string }[] = await server.deps.orm.em
      .getConnection()
      .execute("select id from messages where id in (?)", [messages.map((m) => m.id)]);
    expect(stored.map((row) => row.id).sort()).toEqual([messages[0]?.id, messages[2]?.id].sort());
  });
});
