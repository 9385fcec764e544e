import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { newMessageId } from "../../src/shared/ids.js";
import { clientKey, eventually, fastMessages, isolate, phoneRack, rest, startServer } from "../helpers.js";

let server: Awaited<ReturnType<typeof startServer>>;
let key: string;
let admin: string;
const phones = phoneRack(() => server);

beforeAll(async () => {
  server = await startServer({ ...fastMessages, MESSAGE_DISPATCH_TIMEOUT_MS: "60000" }, { worker: true });
  key = await clientKey(server);
  admin = await clientKey(server, "admin");
});
afterEach(async () => {
  await phones.disconnectAll();
  await isolate(server);
});
afterAll(async () => server.stop());

const phone = phones.connect;

function run(workflowType: string, args: unknown[] = []) {
  return server.deps.temporal.workflow.execute(workflowType, {
    taskQueue: server.deps.config.temporalTaskQueue,
    workflowId: `test-${workflowType}-${randomUUID()}`,
    args,
  });
}

const statusOf = async (messageId: string) =>
  ((await rest(server, "GET", `/api/v1/sms/status/${messageId}`, { key })).body as { status: string }).status;

describe("the gateway health check", () => {
  it("fails a silent gateway's unacknowledged message in flight over to another gateway", async () => {
    const silent = await phone({ autoReport: false, ack: false });
    const sent = await rest(server, "POST", "/api/v1/sms/send", {
      key,
      body: { to: "+14155552671", message: "hc", gateway_id: silent.deviceId },
    });
    const messageId = (sent.body as { message_id: string }).message_id;
    await eventually(async () => (silent.commands.length > 0 ? true : undefined), 10_000, "the command");
    const healthy = await phone();
    await server.deps.orm.em
      .getConnection()
      .execute("update gateways set last_heartbeat_at = now() - interval '10 minutes' where id = ?", [silent.id]);
    const result = (await run("gatewayHealthWorkflow", [{ heartbeatTimeoutSeconds: 120 }])) as {
      markedOffline: string[];
    };
    expect(result.markedOffline).toContain(silent.deviceId);
    await eventually(async () => ((await statusOf(messageId)) === "delivered" ? true : undefined), 20_000, "failover");
    expect(healthy.commands.map((command) => command.messageId)).toContain(messageId);
  });
});

describe("the message sweeper", () => {
  it("starts the workflow of a stored message that has none", async () => {
    await phone();
    const messageId = newMessageId();
    await server.deps.orm.em.getConnection().execute(
      `insert into messages (id, client_key_id, recipient, body, expires_at, created_at)
       values (?, (select id from api_keys where scope = 'client' order by id desc limit 1), '+14155552671', 'orphan',
               now() + interval '1 hour', now() - interval '1 minute')`,
      [messageId],
    );
    const result = (await run("messageSweeperWorkflow", [{ olderThanSeconds: 10 }])) as { started: number };
    expect(result.started).toBeGreaterThanOrEqual(1);
    await eventually(
      async () => {
        const view = await server.deps.messages.get({ keyId: 0, admin: true }, messageId);
        return view.status === "delivered" ? true : undefined;
      },
      20_000,
      "the orphan to be delivered",
    );
  });
});

describe("daily counters", () => {
  it("resets every gateway's daily counters and keeps the totals", async () => {
    const gateway = await phone();
    await server.deps.orm.em
      .getConnection()
      .execute(
        "update gateways set messages_sent_today = 7, messages_received_today = 3, total_messages_sent = 9 where id = ?",
        [gateway.id],
      );
    await run("resetDailyCountersWorkflow");
    const row = (await server.deps.gateways.list()).find((g) => g.id === gateway.id);
    expect(row).toMatchObject({ messagesSentToday: 0, messagesReceivedToday: 0, totalMessagesSent: 9 });
  });
});

describe("GET /api/v1/admin/stats", () => {
  type Stats = {
    gateways: { total: number; active: number; online: number; offline: number };
    messages: { total_sent: number; sent_today: number; total_today: number; failed_today: number; pending: number };
    otp: Record<string, number>;
    timestamp: string;
  };
  const stats = async () => (await rest(server, "GET", "/api/v1/admin/stats", { key: admin })).body as Stats;

  it("answers the documented shape", async () => {
    const body = await stats();
    expect(Object.keys(body)).toEqual(["gateways", "messages", "otp", "timestamp"]);
    expect(Object.keys(body.gateways)).toEqual(["total", "active", "online", "offline"]);
    expect(Object.keys(body.messages)).toEqual([
      "total_sent",
      "total_received",
      "sent_today",
      "received_today",
      "total_today",
      "pending",
      "failed_today",
    ]);
    expect(Object.keys(body.otp)).toEqual(["sent_today", "verified_today", "verification_rate"]);
  });

  it("counts gateways and messages exactly", async () => {
    const before = await stats();
    const good = await phone();
    await phone({ successRate: 0 });
    const offline = await rest(server, "POST", "/api/v1/gateway/register", {
      body: { device_id: `idle-${randomUUID()}` },
    });
    expect(offline.status).toBe(201);

    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const sent = await rest(server, "POST", "/api/v1/sms/send", {
        key,
        body: { to: "+14155552671", message: `ok ${i}`, gateway_id: good.deviceId },
      });
      ids.push((sent.body as { message_id: string }).message_id);
    }
    for (const id of ids)
      await eventually(async () => ((await statusOf(id)) === "delivered" ? true : undefined), 20_000, "delivery");
    // Only the failing phone is left: this message fails five times and then for good.
    await server.deps.orm.em.getConnection().execute("update gateways set active = false where id = ?", [good.id]);
    const doomed = await rest(server, "POST", "/api/v1/sms/send", {
      key,
      body: { to: "+14155552671", message: "doomed" },
    });
    const doomedId = (doomed.body as { message_id: string }).message_id;
    await eventually(async () => ((await statusOf(doomedId)) === "failed" ? true : undefined), 30_000, "failure");
    const waiting = await rest(server, "POST", "/api/v1/sms/send", {
      key,
      body: { to: "+14155552671", message: "later", send_at: new Date(Date.now() + 3_600_000).toISOString() },
    });
    expect(waiting.status).toBe(202);

    const after = await stats();
    expect(after.gateways.total - before.gateways.total).toBe(3);
    expect(after.gateways.active - before.gateways.active).toBe(2);
    expect(after.gateways.online - before.gateways.online).toBe(2);
    expect(after.gateways.offline - before.gateways.offline).toBe(1);
    expect(after.messages.total_sent - before.messages.total_sent).toBe(3);
    expect(after.messages.sent_today - before.messages.sent_today).toBe(3);
    expect(after.messages.total_today - before.messages.total_today).toBe(3);
    expect(after.messages.failed_today - before.messages.failed_today).toBe(1);
    expect(after.messages.pending - before.messages.pending).toBe(1);
    expect(after.gateways.online + after.gateways.offline).toBe(after.gateways.total);
    expect(Date.parse(after.timestamp)).toBeGreaterThan(Date.now() - 10_000);
  }, 60_000);
});
