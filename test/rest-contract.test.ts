import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { documented, rfc3339 } from "./fixtures/documented.js";
import { clientKey, registeredGateway, rest, startServer, unique } from "./helpers.js";

let server: Awaited<ReturnType<typeof startServer>>;
let admin: string;

beforeAll(async () => {
  server = await startServer();
  admin = await clientKey(server, "admin");
});
afterAll(async () => server.stop());

describe("POST /api/v1/gateway/register", () => {
  it("answers 201 with the documented keys and a gateway key shown once", async () => {
    const deviceId = unique("phone");
    const res = await rest(server, "POST", "/api/v1/gateway/register", {
      body: { device_id: deviceId, name: "My Gateway Phone" },
    });
    expect(res.status).toBe(201);
    expect(Object.keys(res.body as object)).toEqual(documented.register);
    expect(res.body).toEqual({
      success: true,
      api_key: expect.stringMatching(/^gw_live_[0-9a-z]{40}$/),
      device_id: deviceId,
      websocket_url: expect.stringMatching(/^ws:\/\/127\.0\.0\.1:\d+\/cable$/),
    });
  });

  it("keeps the device_info of the original's Android integration guide in the gateway's metadata", async () => {
    const deviceId = unique("phone");
    const deviceInfo = { manufacturer: "Samsung", model: "SM-A525F", os_version: "13", app_version: "1.2.0" };
    const res = await rest(server, "POST", "/api/v1/gateway/register", {
      body: { device_id: deviceId, name: "Galaxy", device_info: deviceInfo },
    });
    expect(res.status).toBe(201);
    expect(Object.keys(res.body as object)).toEqual(documented.register);
    const stored = (await server.deps.gateways.list()).find((gateway) => gateway.deviceId === deviceId);
    expect(stored?.metadata).toEqual({ device_info: deviceInfo });
  });

  it("refuses a device id that is already registered with 422, keeping one gateway", async () => {
    const deviceId = unique("phone");
    await rest(server, "POST", "/api/v1/gateway/register", { body: { device_id: deviceId } });
    const again = await rest(server, "POST", "/api/v1/gateway/register", {
      body: { device_id: deviceId, name: "Other" },
    });
    expect(again).toMatchObject({ status: 422, body: { error: "device_id has already been taken" } });
    const gateways = (await server.deps.gateways.list()).filter((gateway) => gateway.deviceId === deviceId);
    expect(gateways).toHaveLength(1);
    expect(gateways[0]?.name).toBe(deviceId);
  });

  it("answers 400 when device_id is missing", async () => {
    const res = await rest(server, "POST", "/api/v1/gateway/register", { body: { name: "no id" } });
    expect(res).toEqual({
      status: 400,
      headers: expect.anything(),
      body: { error: "param is missing or the value is empty: device_id" },
    });
  });

  it("takes PUBLIC_URL for the websocket URL when it is set", async () => {
    const other = await startServer({ PUBLIC_URL: "https://sms.example.com/" });
    try {
      const res = await rest(other, "POST", "/api/v1/gateway/register", { body: { device_id: unique("phone") } });
      expect((res.body as { websocket_url: string }).websocket_url).toBe("wss://sms.example.com/cable");
    } finally {
      await other.stop();
    }
  });
});

describe("POST /api/v1/gateway/heartbeat", () => {
  it("records battery, signal, queue and status and answers the documented shape", async () => {
    const gateway = await registeredGateway(server);
    const res = await rest(server, "POST", "/api/v1/gateway/heartbeat", {
      key: gateway.key,
      body: { status: "online", messages_in_queue: 5, battery_level: 85, signal_strength: 4 },
    });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body as object)).toEqual(documented.heartbeat);
    expect(res.body).toEqual({ success: true, pending_messages: 0 });

    const listed = await rest(server, "GET", "/api/v1/admin/gateways", { key: admin });
    const row = (listed.body as { gateways: Record<string, unknown>[] }).gateways.find(
      (g) => g.device_id === gateway.deviceId,
    );
    expect(row).toMatchObject({
      status: "online",
      last_heartbeat_at: expect.stringMatching(rfc3339),
      metadata: {
        battery_level: 85,
        signal_strength: 4,
        messages_in_queue: 5,
        reported_at: expect.stringMatching(rfc3339),
      },
    });
  });

  it("takes signal strength in dBm, as the original's Android integration guide reports it", async () => {
    const gateway = await registeredGateway(server);
    const beat = (signal: number) =>
      rest(server, "POST", "/api/v1/gateway/heartbeat", { key: gateway.key, body: { signal_strength: signal } });
    expect((await beat(-85)).status).toBe(200);
    const stored = (await server.deps.gateways.list()).find((g) => g.deviceId === gateway.deviceId);
    expect(stored?.metadata).toMatchObject({ signal_strength: -85 });
    expect((await beat(-200)).status).toBe(422);
    expect((await beat(5)).status).toBe(422);
  });

  it("keeps earlier figures when a heartbeat leaves them out, and takes offline", async () => {
    const gateway = await registeredGateway(server);
    await rest(server, "POST", "/api/v1/gateway/heartbeat", { key: gateway.key, body: { battery_level: 50 } });
    await rest(server, "POST", "/api/v1/gateway/heartbeat", {
      key: gateway.key,
      body: { status: "offline", signal_strength: 2 },
    });
    const stored = (await server.deps.gateways.list()).find((g) => g.deviceId === gateway.deviceId);
    expect(stored?.status).toBe("offline");
    expect(stored?.metadata).toMatchObject({ battery_level: 50, signal_strength: 2 });
  });

  it("answers 422 for figures out of range and changes nothing", async () => {
    const gateway = await registeredGateway(server);
    const res = await rest(server, "POST", "/api/v1/gateway/heartbeat", {
      key: gateway.key,
      body: { battery_level: 150 },
    });
    expect(res).toMatchObject({ status: 422, body: { error: "battery_level must be from 0 to 100" } });
    const bad = await rest(server, "POST", "/api/v1/gateway/heartbeat", {
      key: gateway.key,
      body: { status: "asleep" },
    });
    expect(bad).toMatchObject({ status: 422, body: { error: "status must be online or offline" } });
    const stored = (await server.deps.gateways.list()).find((g) => g.deviceId === gateway.deviceId);
    expect(stored?.lastHeartbeatAt).toBeNull();
  });
});

describe("GET /api/v1/admin/gateways", () => {
  it("lists every documented field with JSON numbers, booleans, null and RFC 3339 times", async () => {
    const gateway = await registeredGateway(server);
    const res = await rest(server, "GET", "/api/v1/admin/gateways", { key: admin });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body as object)).toEqual(documented.listGateways);
    const row = (res.body as { gateways: Record<string, unknown>[] }).gateways.find(
      (g) => g.device_id === gateway.deviceId,
    );
    expect(Object.keys(row ?? {})).toEqual(documented.gateway);
    expect(row).toEqual({
      id: gateway.id,
      device_id: gateway.deviceId,
      name: "Test phone",
      status: "offline",
      last_heartbeat_at: null,
      messages_sent_today: 0,
      messages_received_today: 0,
      total_messages_sent: 0,
      total_messages_received: 0,
      active: true,
      priority: 1,
      metadata: {},
      created_at: expect.stringMatching(rfc3339),
    });
  });
});

describe("POST /api/v1/admin/gateways/:id/toggle", () => {
  it("flips active and answers the documented shape", async () => {
    const gateway = await registeredGateway(server);
    const off = await rest(server, "POST", `/api/v1/admin/gateways/${gateway.id}/toggle`, { key: admin });
    expect(off.status).toBe(200);
    expect(Object.keys(off.body as object)).toEqual(documented.toggle);
    expect(Object.keys((off.body as { gateway: object }).gateway)).toEqual(documented.toggledGateway);
    expect(off.body).toEqual({
      success: true,
      gateway: { id: gateway.id, device_id: gateway.deviceId, active: false },
    });
    const on = await rest(server, "POST", `/api/v1/admin/gateways/${gateway.id}/toggle`, { key: admin });
    expect(on.body).toEqual({ success: true, gateway: { id: gateway.id, device_id: gateway.deviceId, active: true } });
  });

  it("answers 404 for an unknown gateway and 400 for an id that is not a number", async () => {
    expect(await rest(server, "POST", "/api/v1/admin/gateways/999999/toggle", { key: admin })).toMatchObject({
      status: 404,
      body: { error: "Gateway not found" },
    });
    expect(await rest(server, "POST", "/api/v1/admin/gateways/abc/toggle", { key: admin })).toMatchObject({
      status: 400,
      body: { error: "id has the wrong type" },
    });
  });
});

describe("the rest of the port", () => {
  it("answers /up with 200 and every dependency ok", async () => {
    const res = await rest(server, "GET", "/up");
    expect(res).toMatchObject({ status: 200, body: { status: "ok", database: "ok", redis: "ok", temporal: "ok" } });
  });

  it("answers an unknown path with 404 and the error body", async () => {
    expect(await rest(server, "GET", "/api/v1/nothing")).toMatchObject({ status: 404, body: { error: "Not found" } });
  });

  it("serves Prometheus metrics that count REST requests by route", async () => {
    await rest(server, "GET", "/up");
    const res = await fetch(`${server.url}/metrics`);
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(text).toMatch(/smsgw_http_requests_total\{method="GET",route="\/up",status="200"\} \d+/);
    // Every request counts in its series, the first of its label set and those after it alike.
    const counts = (metrics: string) =>
      ["smsgw_http_requests_total", "smsgw_http_request_duration_seconds_count"].map((name) =>
        Number(new RegExp(`${name}\\{method="GET",route="/up"(,status="200")?\\} (\\d+)`).exec(metrics)?.[2]),
      );
    const before = counts(text);
    expect(before.every((count) => count >= 1)).toBe(true);
    await rest(server, "GET", "/up");
    await rest(server, "GET", "/up");
    expect(counts(await (await fetch(`${server.url}/metrics`)).text())).toEqual(before.map((count) => count + 2));
  });
});
