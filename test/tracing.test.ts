import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serve } from "../src/serve.js";
import { Receiver } from "./fixtures/receiver.js";
import { clientKey, eventually, fastMessages, isolate, rest, simulatedGateway, testConfig, unique } from "./helpers.js";

/**
 * With OTEL_EXPORTER_OTLP_ENDPOINT set, one trace per message: the REST call, the start of its
 * workflow, the workflow and its steps, the command to the phone, and its webhook's delivery. The
 * collector is a local HTTP server taking OTLP/HTTP JSON, as a real one would.
 */
const collector = new Receiver();
const webhook = new Receiver();
let server: Awaited<ReturnType<typeof serve>>;

interface Span {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
}

function spans(): Span[] {
  return collector.requests.flatMap((request) => {
    const body = JSON.parse(request.body) as {
      resourceSpans: { scopeSpans: { spans: Span[] }[] }[];
    };
    return body.resourceSpans.flatMap((resource) => resource.scopeSpans.flatMap((scope) => scope.spans));
  });
}

beforeAll(async () => {
  await collector.start();
  await webhook.start();
  const config = testConfig({
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.url.replace(/\/hook$/, ""),
    ...fastMessages,
    TEMPORAL_TASK_QUEUE: unique("traced"),
    WEBHOOK_ALLOW_PRIVATE_TARGETS: "true",
    DATA_DIR: mkdtempSync(join(tmpdir(), "smsgw-traced-")),
  });
  // The workflow code is bundled with the OpenTelemetry interceptors, as a traced server does.
  server = await serve(config, pino({ level: "warn" }), { api: true, worker: true, schedules: false });
}, 120_000);
afterAll(async () => {
  await collector.stop();
  await webhook.stop();
});

describe("tracing", () => {
  it("follows a message in one trace from the REST call to the phone and the webhook", async () => {
    const url = server.url ?? "";
    await isolate(server);
    // Only this test's endpoint hears the message (one left active by another test would be retried
    // for minutes, its workflow's span still open).
    await server.deps.orm.em.getConnection().execute("update webhooks set active = false");
    const key = await clientKey({ ...server, url });
    const admin = await clientKey({ ...server, url }, "admin");
    await rest({ url }, "POST", "/api/v1/admin/webhooks", {
      key: admin,
      body: { url: webhook.url, events: ["sms_delivered"] },
    });
    const phone = await simulatedGateway({ url, deps: server.deps });
    const sent = await rest({ url }, "POST", "/api/v1/sms/send", {
      key,
      body: { to: "+14155552671", message: "traced", gateway_id: phone.deviceId },
    });
    const id = (sent.body as { message_id: string }).message_id;
    await eventually(async () => (webhook.requests.some((r) => r.body.includes(id)) ? true : undefined), 30_000);
    // The delivery's workflow ends after the endpoint answered; its spans are exported once it has.
    const [delivery] = await server.deps.orm.em.getConnection().execute<{ id: string }[]>(
      `select d.id from webhook_deliveries d join events e on e.id = d.event_id join webhooks w on w.id = d.webhook_id
          where e.message_id = ? and w.url = ?`,
      [id, webhook.url],
    );
    await server.deps.temporal.workflow.getHandle(`webhook/${delivery?.id}`).result();
    await phone.disconnect();
    await server.stop();

    const all = spans();
    const root = all.find((span) => span.name === "smsgw.v1.SmsService/SendSms");
    expect(root, all.map((span) => span.name).join(", ")).toBeDefined();
    const trace = all.filter((span) => span.traceId === root?.traceId);
    const names = trace.map((span) => span.name);
    expect(names).toEqual(
      expect.arrayContaining([
        "smsgw.v1.SmsService/SendSms",
        "StartWorkflow:messageLifecycle",
        "RunWorkflow:messageLifecycle",
        "device command send_sms",
        "StartWorkflow:webhookDeliveryWorkflow",
        "RunWorkflow:webhookDeliveryWorkflow",
      ]),
    );
    // One tree: every span but the root has its parent in the trace.
    const ids = new Set(trace.map((span) => span.spanId));
    const orphans = trace.filter((span) => span !== root && !ids.has(span.parentSpanId ?? ""));
    expect(orphans.map((span) => span.name)).toEqual([]);
  }, 90_000);
});
