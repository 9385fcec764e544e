import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientKey, registeredGateway, rest, startServer, unique } from "./helpers.js";

/**
 * The OpenAPI document describes the REST door exactly as it answers: it is valid OpenAPI 3.1, it is
 * served at /openapi.json and browsable at /docs, and the live answer of every operation, success and
 * errors, validates against its schema with a standard JSON Schema validator (Ajv, draft 2020-12).
 */
interface Operation {
  operationId: string;
  responses: Record<string, unknown>;
}
type Document = { paths: Record<string, Record<string, Operation>> };

const document = JSON.parse(readFileSync("gen/openapi.json", "utf8")) as Document;
const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addFormat("date-time", /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
ajv.addFormat("int32", { type: "number", validate: (n: number) => Number.isInteger(n) && Math.abs(n) < 2 ** 31 });
ajv.addFormat("uint32", { type: "number", validate: (n: number) => Number.isInteger(n) && n >= 0 && n < 2 ** 32 });
ajv.addSchema(document, "openapi");
const pointer = (...parts: string[]) => parts.map((part) => part.replaceAll("~", "~0").replaceAll("/", "~1")).join("/");

const checked = new Set<string>();

/** The operation a request went to, by method and path template. */
function operationOf(method: string, path: string): { template: string; operation: Operation } {
  const bare = path.split("?")[0] ?? path;
  for (const [template, operations] of Object.entries(document.paths)) {
    const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, "[^/]+")}$`);
    const operation = operations[method.toLowerCase()];
    if (pattern.test(bare) && operation !== undefined) return { template, operation };
  }
  throw new Error(`${method} ${bare} is not in the document`);
}

let server: Awaited<ReturnType<typeof startServer>>;

/** A REST call whose answer must be documented for its status and validate against its schema. */
async function call(
  method: string,
  path: string,
  options: Parameters<typeof rest>[3] = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await rest(server, method, path, options);
  const { template, operation } = operationOf(method, path);
  const status = String(res.status);
  expect(Object.keys(operation.responses), `${method} ${path} answered an undocumented ${status}`).toContain(status);
  const validate = ajv.getSchema(
    `openapi#/${pointer("paths", template, method.toLowerCase(), "responses", status)}/content/application~1json/schema`,
  );
  if (validate === undefined) throw new Error(`no schema for ${method} ${template} ${status}`);
  expect(validate(res.body), `${method} ${path} ${status}: ${ajv.errorsText(validate.errors)}`).toBe(true);
  checked.add(`${operation.operationId} ${status}`);
  return { status: res.status, body: res.body as Record<string, unknown> };
}

let key: string;
let admin: string;

beforeAll(async () => {
  server = await startServer({ WEBHOOK_ALLOW_PRIVATE_TARGETS: "true" });
  key = await clientKey(server);
  admin = await clientKey(server, "admin");
});
afterAll(async () => server.stop());

describe("the OpenAPI document", () => {
  it("is valid OpenAPI 3.1, served at /openapi.json, and browsable at /docs from this server alone", async () => {
    const result = await new Validator().validate(document as unknown as Record<string, unknown>);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(await (await fetch(`${server.url}/openapi.json`)).json()).toEqual(document);
    const page = await fetch(`${server.url}/docs`);
    expect(page.headers.get("content-type")).toContain("text/html");
    const html = await page.text();
    const scripts = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1] ?? "");
    expect(scripts.every((src) => src.startsWith("/docs/assets/"))).toBe(true);
    for (const src of scripts) expect((await fetch(`${server.url}${src}`)).status).toBe(200);
  });

  it("validates the live answers of every REST operation, successes and errors", async () => {
    // Gateways.
    const device = unique("openapi");
    const registered = await call("POST", "/api/v1/gateway/register", { body: { device_id: device, name: "Docs" } });
    expect(registered, JSON.stringify(registered.body)).toMatchObject({ status: 201 });
    const gatewayKey = registered.body.api_key as string;
    await call("POST", "/api/v1/gateway/register", { body: { device_id: device } });
    await call("POST", "/api/v1/gateway/heartbeat", { key: gatewayKey, body: { battery_level: 80 } });
    await call("POST", "/api/v1/gateway/heartbeat", { body: {} });
    await call("POST", "/api/v1/gateway/sms/received", {
      key: gatewayKey,
      body: { sender: "+14155550100", message: "hello", report_id: "r1" },
    });
    await call("POST", "/api/v1/gateway/sms/received", { key: gatewayKey, body: { sender: "", message: "x" } });

    // Messages.
    const sent = await call("POST", "/api/v1/sms/send", { key, body: { to: "+14155552671", message: "documented" } });
    expect(sent.status).toBe(202);
    const id = sent.body.message_id as string;
    await call("POST", "/api/v1/sms/send", { key, body: { to: "not a number", message: "x" } });
    await call("POST", "/api/v1/sms/send", { body: { to: "+14155552671", message: "x" } });
    await call("POST", "/api/v1/sms/send_batch", { key, body: { to: ["+14155552671", "+14155552672"], message: "b" } });
    await call("GET", `/api/v1/sms/status/${id}`, { key });
    await call("GET", "/api/v1/sms/status/msg_nosuchmessage", { key });
    await call("GET", `/api/v1/sms/${id}/attempts`, { key });
    await call("GET", "/api/v1/sms/received?limit=2&page=1", { key });
    await call("GET", "/api/v1/sms/received", { key: gatewayKey });

    // A report on a message the gateway was given, and one on a message it was not.
    const gateway = await registeredGateway(server);
    const given = await call("POST", "/api/v1/sms/send", { key, body: { to: "+14155552673", message: "given" } });
    const givenId = given.body.message_id as string;
    await server.deps.messageRepository.dispatch(givenId, gateway.id, 1);
    await call("POST", "/api/v1/gateway/sms/status", {
      key: gateway.key,
      body: { message_id: givenId, status: "sent" },
    });
    await call("POST", "/api/v1/gateway/sms/status", { key: gateway.key, body: { message_id: id, status: "sent" } });
    await call("GET", `/api/v1/sms/${givenId}/attempts`, { key });
    await call("GET", `/api/v1/sms/status/${givenId}`, { key });
    await call("POST", `/api/v1/sms/${id}/cancel`, { key });
    await call("POST", `/api/v1/sms/${givenId}/cancel`, { key });
    const listed = await call("GET", "/api/v1/sms?limit=1", { key });
    await call("GET", `/api/v1/sms?limit=1&page_token=${listed.body.next_page_token as string}&status=cancelled`, {
      key,
    });
    await call("GET", "/api/v1/sms?status=lost", { key });
    await call("GET", `/api/v1/sms/${givenId}/journey`, { key });
    await call("GET", `/api/v1/sms/${givenId}/journey`, { key: admin });
    await call("GET", "/api/v1/sms/msg_nosuchmessage/journey", { key });
    await call("GET", "/api/v1/me", { key });

    // One-time passwords.
    await call("POST", "/api/v1/otp/send", { key, body: { phone_number: "+14155552674" } });
    await call("POST", "/api/v1/otp/verify", { key, body: { phone_number: "+14155552674", code: "000000" } });
    await call("POST", "/api/v1/otp/verify", { key, body: { phone_number: "+14155552674" } });

    // Administration.
    await call("GET", "/api/v1/admin/stats", { key: admin });
    await call("GET", "/api/v1/admin/stats", { key });
    const gateways = await call("GET", "/api/v1/admin/gateways", { key: admin });
    const first = (gateways.body.gateways as { id: number }[])[0];
    await call("POST", `/api/v1/admin/gateways/${first?.id}/toggle`, { key: admin });
    await call("POST", `/api/v1/admin/gateways/${first?.id}/toggle`, { key: admin });
    await call("POST", "/api/v1/admin/gateways/999999/toggle", { key: admin });
    await call("PATCH", `/api/v1/admin/gateways/${first?.id}`, { key: admin, body: { priority: 3 } });
    await call("PATCH", `/api/v1/admin/gateways/${first?.id}`, { key: admin, body: { priority: 300 } });
    await call("GET", "/api/v1/admin/overview", { key: admin });
    await call("GET", "/api/v1/admin/keys", { key: admin });
    const madeKey = await call("POST", "/api/v1/admin/keys", {
      key: admin,
      body: { name: "documented", scope: "client" },
    });
    await call("POST", "/api/v1/admin/keys", { key: admin, body: { name: "documented", scope: "root" } });
    await call("POST", `/api/v1/admin/keys/${(madeKey.body.key as { id: number }).id}/revoke`, { key: admin });
    await call("POST", "/api/v1/admin/keys/999999/revoke", { key: admin });
    // What phones running the SMSGate app are told to do.
    await call("GET", "/api/v1/admin/smsgate/settings", { key: admin });
    await call("PATCH", "/api/v1/admin/smsgate/settings", {
      key: admin,
      body: { settings: { ping_interval_seconds: 0 } },
    });
    await call("PATCH", "/api/v1/admin/smsgate/settings", {
      key: admin,
      body: { settings: { limit_period: "Weekly" } },
    });
    await call("GET", "/api/v1/admin/smsgate/settings?gateway_id=nobody", { key: admin });
    const created = await call("POST", "/api/v1/admin/webhooks", {
      key: admin,
      body: { url: "http://127.0.0.1:9/hook", events: ["sms_delivered"] },
    });
    expect(created.status).toBe(201);
    const webhook = created.body.webhook as { id: number } | undefined;
    const webhookId = webhook?.id ?? (created.body.id as number);
    await call("POST", "/api/v1/admin/webhooks", { key: admin, body: { url: "ftp://nowhere", events: [] } });
    await call("GET", "/api/v1/admin/webhooks", { key: admin });
    await call("PATCH", `/api/v1/admin/webhooks/${webhookId}`, { key: admin, body: { active: false } });
    await call("POST", `/api/v1/admin/webhooks/${webhookId}/test`, { key: admin });
    await call("GET", `/api/v1/admin/webhooks/${webhookId}/deliveries?limit=5`, { key: admin });
    await call("DELETE", `/api/v1/admin/webhooks/${webhookId}`, { key: admin });
    await call("DELETE", `/api/v1/admin/webhooks/${webhookId}`, { key: admin });

    // Every operation was answered with success at least once.
    const succeeded = new Set(
      [...checked].filter((entry) => /\s2\d\d$/.test(entry)).map((entry) => entry.split(" ")[0]),
    );
    const operations = Object.values(document.paths).flatMap((ops) => Object.values(ops).map((op) => op.operationId));
    expect(operations.filter((operation) => !succeeded.has(operation))).toEqual([]);
    // And errors of each kind: 400, 401, 403, 404, 422.
    const errors = new Set(
      [...checked].map((entry) => entry.split(" ")[1]).filter((status) => status?.startsWith("4")),
    );
    expect([...errors].sort()).toEqual(expect.arrayContaining(["400", "401", "403", "404", "422"]));
  });
});
