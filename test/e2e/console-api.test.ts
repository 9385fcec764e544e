import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountService, AdminService } from "../../gen/smsgw/v1/admin_pb.js";
import { SmsService } from "../../gen/smsgw/v1/sms_pb.js";
import { listQuery, type MessageListFilters } from "../../src/modules/messages/message.repository.js";
import { clientKey, doors, registeredGateway, rest, startServer, withKey } from "../helpers.js";

/**
 * The RPCs the console reads (and REST clients may): lists that page by token over 100,000 stored
 * messages on an index, keys, gateways' settings, the overview, and what a caller may see.
 */
let server: Awaited<ReturnType<typeof startServer>>;
let admin: string;
let bulkKey: string;
let bulkKeyId: number;
const bulk = 100_000;

beforeAll(async () => {
  server = await startServer();
  admin = await clientKey(server, "admin");
  bulkKey = await clientKey(server);
  const sql = server.deps.orm.em.getConnection();
  const [key] = await sql.execute<{ id: number }[]>("select max(id) as id from api_keys where scope = 'client'");
  bulkKeyId = key?.id ?? 0;
  // 100,000 ended messages of one application, two days old, one a second.
  await sql.execute(
    `insert into messages (id, recipient, body, status, client_key_id, created_at, updated_at, expires_at, attempts)
     select 'msg_bulk' || lpad(i::text, 8, '0'), '+1415555' || lpad((i % 1000)::text, 4, '0'), 'bulk ' || i,
            (array['delivered', 'failed', 'expired', 'cancelled'])[1 + i % 4], ?,
            now() - interval '2 days' - make_interval(secs => i), now(), now(), 1
       from generate_series(1, ?) as i`,
    [bulkKeyId, bulk],
  );
  await sql.execute("analyze messages");
}, 120_000);

afterAll(async () => {
  await server.deps.orm.em.getConnection().execute("delete from messages where client_key_id = ?", [bulkKeyId]);
  await server.stop();
});

describe("listing messages", () => {
  it("pages newest first by token, without a page repeating or skipping a message", async () => {
    const first = await rest(server, "GET", "/api/v1/sms?limit=100", { key: bulkKey });
    expect(first.status).toBe(200);
    const page1 = first.body as { messages: { message_id: string }[]; next_page_token: string };
    expect(page1.messages).toHaveLength(100);
    expect(page1.messages[0]?.message_id).toBe("msg_bulk00000001");
    const second = await rest(server, "GET", `/api/v1/sms?limit=100&page_token=${page1.next_page_token}`, {
      key: bulkKey,
    });
    const page2 = second.body as { messages: { message_id: string }[] };
    expect(page2.messages[0]?.message_id).toBe("msg_bulk00000101");
    expect(page2.messages[99]?.message_id).toBe("msg_bulk00000200");
  });

  it("filters by status, recipient and time, on every door", async () => {
    const sms = doors(server, SmsService).connect;
    const failed = await sms.listSms({ status: "failed", limit: 10 }, withKey(bulkKey));
    expect(failed.messages.every((message) => message.status === "failed")).toBe(true);
    expect(failed.messages).toHaveLength(10);
    const to = await sms.listSms({ to: "+14155550007", limit: 100 }, withKey(bulkKey));
    expect(to.messages.map((message) => message.messageId)).toEqual(
      Array.from({ length: 100 }, (_, i) => `msg_bulk${String(7 + 1000 * i).padStart(8, "0")}`),
    );
    // Before the tenth message (one a second, newest first): the eleventh comes first.
    const newest = await sms.listSms({ limit: 10 }, withKey(bulkKey));
    const tenth = newest.messages[9]?.createdAt;
    const windowed = await sms.listSms({ until: tenth, since: undefined, limit: 1 }, withKey(bulkKey));
    expect(windowed.messages[0]?.messageId).toBe("msg_bulk00000011");
  });

  it("reads each page through an index, whatever the filter (100,000 messages stored)", async () => {
    const shapes: MessageListFilters[] = [
      { clientKeyId: null, limit: 51 },
      { clientKeyId: bulkKeyId, limit: 51 },
      { clientKeyId: null, status: "failed", limit: 51 },
      { clientKeyId: null, recipient: "+14155550007", limit: 51 },
      { clientKeyId: null, gatewayDeviceId: "some-phone", limit: 51 },
      { clientKeyId: null, since: new Date(Date.now() - 3_600_000), limit: 51 },
      {
        clientKeyId: bulkKeyId,
        after: { createdAt: new Date(Date.now() - 3 * 86_400_000).toISOString(), id: "msg_x" },
        limit: 51,
      },
    ];
    const sql = server.deps.orm.em.getConnection();
    for (const shape of shapes) {
      const { sql: statement, params } = listQuery(shape);
      const [plan] = await sql.execute<{ "QUERY PLAN": unknown }[]>(`explain (format json) ${statement}`, params);
      const scans: { type: string; relation?: string }[] = [];
      const walk = (node: { "Node Type": string; "Relation Name"?: string; Plans?: unknown[] }) => {
        scans.push({ type: node["Node Type"], relation: node["Relation Name"] });
        for (const child of node.Plans ?? []) walk(child as typeof node);
      };
      const plans = (plan?.["QUERY PLAN"] ?? []) as { Plan: Parameters<typeof walk>[0] }[];
      walk(plans[0]?.Plan ?? { "Node Type": "none" });
      const onMessages = scans.filter((scan) => scan.relation === "messages");
      expect(onMessages.length, JSON.stringify(shape)).toBeGreaterThan(0);
      expect(
        onMessages.map((scan) => scan.type),
        JSON.stringify(shape),
      ).not.toContain("Seq Scan");
    }
  });

  it("refuses a bad filter or token with a clear error", async () => {
    const status = await rest(server, "GET", "/api/v1/sms?status=lost", { key: bulkKey });
    expect(status.status).toBe(422);
    expect(status.body).toEqual({ error: expect.stringContaining("status must be one of") });
    const token = await rest(server, "GET", "/api/v1/sms?page_token=forged", { key: bulkKey });
    expect(token.status).toBe(422);
    expect(token.body).toEqual({ error: "page_token is not a token this server gave" });
    const limit = await rest(server, "GET", "/api/v1/sms?limit=1000", { key: bulkKey });
    expect(limit.status).toBe(422);
  });

  it("shows a client key only its own messages; another's journey is not found", async () => {
    const other = await clientKey(server);
    expect(
      ((await rest(server, "GET", "/api/v1/sms", { key: other })).body as { messages: unknown[] }).messages,
    ).toEqual([]);
    const journey = await rest(server, "GET", "/api/v1/sms/msg_bulk00000001/journey", { key: other });
    expect(journey.status).toBe(404);
    const own = await rest(server, "GET", "/api/v1/sms/msg_bulk00000001/journey", { key: bulkKey });
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({
      message: { message_id: "msg_bulk00000001", status: "failed" },
      workflow_id: "message/msg_bulk00000001",
      webhook_deliveries: [],
    });
  });
});

describe("keys, gateways and the overview", () => {
  it("creates a key shown once, lists it without the key, and revokes it", async () => {
    const created = await rest(server, "POST", "/api/v1/admin/keys", {
      key: admin,
      body: { name: "billing app", scope: "client" },
    });
    expect(created.status).toBe(201);
    const { api_key: secret, key } = created.body as { api_key: string; key: { id: number; hint: string } };
    expect(secret).toMatch(/^api_live_/);
    expect(key.hint).toBe(secret.slice(-4));
    const listed = await rest(server, "GET", "/api/v1/admin/keys", { key: admin });
    expect(JSON.stringify(listed.body)).not.toContain(secret);
    expect((await rest(server, "GET", "/api/v1/me", { key: secret })).body).toEqual({
      key_id: key.id,
      scope: "client",
      name: "billing app",
    });
    const revoked = await rest(server, "POST", `/api/v1/admin/keys/${key.id}/revoke`, { key: admin });
    expect(revoked.body).toMatchObject({ key: { id: key.id, revoked_at: expect.any(String) } });
    expect((await rest(server, "GET", "/api/v1/me", { key: secret })).status).toBe(401);
  });

  it("issues a new gateway key for a reinstalled phone, and refuses bad key requests", async () => {
    const gateway = await registeredGateway(server);
    const created = await rest(server, "POST", "/api/v1/admin/keys", {
      key: admin,
      body: { name: "reinstalled", scope: "gateway", gateway_id: gateway.deviceId },
    });
    expect(created.status).toBe(201);
    const secret = (created.body as { api_key: string }).api_key;
    expect(secret).toMatch(/^gw_live_/);
    const heartbeat = await rest(server, "POST", "/api/v1/gateway/heartbeat", {
      key: secret,
      body: { status: "online" },
    });
    expect(heartbeat.status).toBe(200);
    for (const body of [
      { name: "", scope: "client" },
      { name: "x", scope: "root" },
      { name: "x", scope: "gateway" },
      { name: "x", scope: "client", gateway_id: gateway.deviceId },
    ]) {
      const refused = await rest(server, "POST", "/api/v1/admin/keys", { key: admin, body });
      expect(refused.status, JSON.stringify(body)).toBe(422);
    }
    const unknown = await rest(server, "POST", "/api/v1/admin/keys", {
      key: admin,
      body: { name: "x", scope: "gateway", gateway_id: "no-such-phone" },
    });
    expect(unknown.status).toBe(404);
    const byClient = await rest(server, "POST", "/api/v1/admin/keys", {
      key: bulkKey,
      body: { name: "x", scope: "admin" },
    });
    expect(byClient.status).toBe(403);
  });

  it("changes a gateway's priority and active flag, and refuses a priority out of range", async () => {
    const gateway = await registeredGateway(server);
    const updated = await rest(server, "PATCH", `/api/v1/admin/gateways/${gateway.id}`, {
      key: admin,
      body: { priority: 42, active: false },
    });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ gateway: { device_id: gateway.deviceId, priority: 42, active: false } });
    const refused = await rest(server, "PATCH", `/api/v1/admin/gateways/${gateway.id}`, {
      key: admin,
      body: { priority: 1000 },
    });
    expect(refused.status).toBe(422);
    expect((await server.deps.gateways.find(gateway.id))?.priority).toBe(42);
    const missing = await rest(server, "PATCH", "/api/v1/admin/gateways/999999", { key: admin, body: { priority: 1 } });
    expect(missing.status).toBe(404);
  });

  it("streams the fleet to an admin and refuses a client key", async () => {
    const adminApi = doors(server, AdminService).connect;
    const gateway = await registeredGateway(server);
    for await (const snapshot of adminApi.watchGateways({}, withKey(admin))) {
      expect(snapshot.gateways.some((found) => found.deviceId === gateway.deviceId)).toBe(true);
      break;
    }
    const refused = (async () => {
      for await (const _ of adminApi.watchGateways({}, withKey(bulkKey))) return;
    })();
    await expect(refused).rejects.toSatisfy((error) => ConnectError.from(error).code === Code.PermissionDenied);
  }, 10_000);

  it("gives the overview: sixty minutes, rates and backlog", async () => {
    const overview = await rest(server, "GET", "/api/v1/admin/overview", { key: admin });
    expect(overview.status).toBe(200);
    const body = overview.body as { minutes: unknown[]; delivery_rate: number; otp_last_7_days: unknown };
    expect(body.minutes).toHaveLength(60);
    expect(body).toMatchObject({
      otp_today: { sent: expect.any(Number) },
      otp_last_7_days: { sent: expect.any(Number) },
    });
    const caller = await doors(server, AccountService).grpc.getCaller({}, withKey(admin));
    expect(caller.scope).toBe("admin");
  });
});
