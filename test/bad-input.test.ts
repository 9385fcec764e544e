import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DomainError } from "../src/shared/errors.js";
import { normalizePhoneNumber } from "../src/shared/phone.js";
import { clientKey, registeredGateway, rest, startServer, unique } from "./helpers.js";

let server: Awaited<ReturnType<typeof startServer>>;
let admin: string;
let gatewayKey: string;

beforeAll(async () => {
  server = await startServer();
  admin = await clientKey(server, "admin");
  gatewayKey = (await registeredGateway(server)).key;
});
afterAll(async () => server.stop());

describe("bad bodies get a clear 4xx, never a 500, and write nothing", () => {
  const register = "/api/v1/gateway/register";

  it.each([
    ["an empty body", "", "application/json", 400, "param is missing or the value is empty: device_id"],
    ["a body that is not JSON", "{not json", "application/json", 400, "Invalid JSON in request body"],
    ["a JSON array", "[1,2]", "application/json", 400, "Request body must be a JSON object"],
    ["a JSON string", '"text"', "application/json", 400, "Request body must be a JSON object"],
    ["a number for a string field", '{"device_id": 12}', "application/json", 400, "device_id has the wrong type"],
    [
      "an object for a string field",
      '{"device_id": {"a": 1}}',
      "application/json",
      400,
      "device_id has the wrong type",
    ],
    [
      "a blank device id",
      '{"device_id": "   "}',
      "application/json",
      400,
      "param is missing or the value is empty: device_id",
    ],
    [
      "a device id over 255 characters",
      JSON.stringify({ device_id: "x".repeat(256) }),
      "application/json",
      422,
      "device_id is too long (at most 255 characters)",
    ],
  ])("register with %s", async (_what, rawBody, contentType, status, error) => {
    const before = (await server.deps.gateways.list()).length;
    const res = await rest(server, "POST", register, { rawBody, headers: { "content-type": contentType } });
    expect({ status: res.status, body: res.body }).toEqual({ status, body: { error } });
    expect((await server.deps.gateways.list()).length).toBe(before);
  });

  it("answers 413 for a body over the limit", async () => {
    const res = await rest(server, "POST", register, {
      rawBody: JSON.stringify({ device_id: "x", name: "y".repeat(2_000_000) }),
      headers: { "content-type": "application/json" },
    });
    expect(res.status).toBe(413);
    expect(res.body).toEqual({ error: expect.any(String) });
  });

  it("reads a form-encoded body as Rails did", async () => {
    const deviceId = unique("form");
    const res = await rest(server, "POST", register, {
      rawBody: `device_id=${deviceId}&name=Form+Phone`,
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expect(res.status).toBe(201);
    expect((await server.deps.gateways.findByDeviceId(deviceId)).name).toBe("Form Phone");
  });

  it("reads JSON sent with curl's default form content type", async () => {
    const deviceId = unique("curl");
    const res = await rest(server, "POST", register, {
      rawBody: JSON.stringify({ device_id: deviceId }),
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expect(res.status).toBe(201);
  });

  it("answers 400 for a wrong type in a heartbeat and keeps the gateway untouched", async () => {
    const res = await rest(server, "POST", "/api/v1/gateway/heartbeat", {
      key: gatewayKey,
      body: { battery_level: "full" },
    });
    expect(res).toMatchObject({ status: 400, body: { error: "battery_level has the wrong type" } });
  });

  it("ignores unknown fields, as the original did", async () => {
    const res = await rest(server, "POST", register, { body: { device_id: unique("extra"), colour: "blue" } });
    expect(res.status).toBe(201);
  });

  it("answers a malformed Authorization header with 401", async () => {
    const res = await rest(server, "GET", "/api/v1/admin/gateways", { headers: { authorization: `Token ${admin}` } });
    expect(res).toMatchObject({ status: 401, body: { error: "Missing API key" } });
  });

  it("answers a malformed Connect request without a 500", async () => {
    const response = await fetch(`${server.url}/smsgw.v1.GatewayService/Register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{nope",
    });
    expect(response.status).toBe(400);
  });
});

describe("phone numbers", () => {
  it("normalises national and formatted numbers to E.164 with the default country", () => {
    expect(normalizePhoneNumber("(415) 555-2671", "US", "to")).toBe("+14155552671");
    expect(normalizePhoneNumber("+44 20 7946 0958", "US", "to")).toBe("+442079460958");
    expect(normalizePhoneNumber("020 7946 0958", "GB", "to")).toBe("+442079460958");
  });

  it.each(["hello", "123", "+1 555", "+999 1234567"])("refuses %s as a 422 validation error", (input) => {
    expect(() => normalizePhoneNumber(input, "US", "to")).toThrow(DomainError);
    try {
      normalizePhoneNumber(input, "US", "to");
    } catch (error) {
      expect((error as DomainError).code).toBe("validation");
      expect((error as DomainError).message).toBe("to is not a valid phone number");
    }
  });
});
