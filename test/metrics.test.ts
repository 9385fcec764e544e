import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lacks } from "./fixtures/tools.js";
import { clientKey, eventually, fastMessages, isolate, phoneRack, rest, startServer } from "./helpers.js";

/**
 * `/metrics` tells an operator how the pipeline does: messages by outcome and gateway, the backlog,
 * delivery latency, devices connected, OTP, rate limits, and the Temporal worker's own metrics; the
 * shipped alert rules and dashboards name only metrics that exist.
 */
let server: Awaited<ReturnType<typeof startServer>>;
let key: string;
const phones = phoneRack(() => server);

beforeAll(async () => {
  server = await startServer({ ...fastMessages, RATE_LIMIT_REQUESTS: "100000" }, { worker: true });
  key = await clientKey(server);
  await isolate(server);
});
afterAll(async () => {
  await phones.disconnectAll();
  await server.stop();
});

async function scrape(): Promise<string> {
  const response = await fetch(`${server.url}/metrics`);
  expect(response.status).toBe(200);
  return response.text();
}

/** The value of one sample, by its name and labels as written; undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Every metric family the scrape names (histograms and summaries by their base name). */
function families(text: string): Set<string> {
  return new Set(text.split("\n").flatMap((line) => (line.startsWith("# TYPE ") ? [line.split(" ")[2] ?? ""] : [])));
}

describe("domain metrics on /metrics", () => {
  it("counts a delivered message by gateway, its latency, the devices connected and the backlog", async () => {
    const phone = await phones.connect();
    const sent = await rest(server, "POST", "/api/v1/sms/send", {
      key,
      body: { to: "+14155552671", message: "measured", gateway_id: phone.deviceId },
    });
    const id = (sent.body as { message_id: string }).message_id;
    await eventually(async () => {
      const status = await rest(server, "GET", `/api/v1/sms/status/${id}`, { key });
      return (status.body as { status: string }).status === "delivered" ? true : undefined;
    });
    const text = await scrape();
    expect(sample(text, `smsgw_messages_total{outcome="delivered",gateway="${phone.deviceId}"}`)).toBe(1);
    expect(sample(text, `smsgw_messages_total{outcome="sent",gateway="${phone.deviceId}"}`)).toBe(1);
    expect(sample(text, "smsgw_messages_accepted_total")).toBeGreaterThanOrEqual(1);
    expect(sample(text, "smsgw_message_accept_to_delivered_seconds_count")).toBeGreaterThanOrEqual(1);
    expect(sample(text, "smsgw_message_accept_to_dispatch_seconds_count")).toBeGreaterThanOrEqual(1);
    // The phone acknowledged the command: how long that took to be durable is measured.
    expect(sample(text, "smsgw_device_ack_record_seconds_count")).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'smsgw_devices_connected{channel="stream"}')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'smsgw_messages_backlog{status="queued"}')).toBe(0);
    expect(sample(text, "smsgw_commands_unacknowledged")).toBe(0);
    expect(sample(text, 'smsgw_gateways{status="online",active="true"}')).toBeGreaterThanOrEqual(1);
    expect(sample(text, `smsgw_gateway_last_heartbeat_timestamp_seconds{gateway="${phone.deviceId}"}`)).toBeGreaterThan(
      Date.now() / 1000 - 60,
    );
    // The Temporal worker's own metrics, from the SDK.
    expect([...families(text)].some((name) => name.startsWith("temporal_"))).toBe(true);
  });

  it("counts OTP sent, verified and failed, and a message waiting with no gateway", async () => {
    await phones.disconnectAll();
    await isolate(server);
    const before = await scrape();
    const otp = await rest(server, "POST", "/api/v1/otp/send", { key, body: { phone_number: "+14155552672" } });
    expect(otp.status).toBe(200);
    await rest(server, "POST", "/api/v1/otp/verify", { key, body: { phone_number: "+14155552672", code: "000000" } });
    const after = await scrape();
    const delta = (series: string) => (sample(after, series) ?? 0) - (sample(before, series) ?? 0);
    expect(delta('smsgw_otp_total{event="sent"}')).toBe(1);
    expect(delta('smsgw_otp_total{event="failed"}')).toBe(1);
    await eventually(async () =>
      (sample(await scrape(), 'smsgw_messages_backlog{status="queued"}') ?? 0) >= 1 ? true : undefined,
    );
  });
});

describe("the shipped alert rules and dashboards", () => {
  it.skipIf(lacks("promtool"))(
    "pass promtool: the rules and the Prometheus config check, and each rule's unit tests fire when they should",
    () => {
      const promtool = (args: string[]) => execFileSync("promtool", args, { stdio: "pipe" }).toString();
      expect(promtool(["check", "rules", "deploy/prometheus/alerts.yml"])).toContain("SUCCESS: 6 rules found");
      expect(promtool(["check", "config", "deploy/prometheus/prometheus.yml"])).toContain("SUCCESS");
      expect(promtool(["test", "rules", "deploy/prometheus/alerts.test.yml"])).toContain("SUCCESS");
    },
  );

  it("name only metrics the server exports", async () => {
    const exported = families(await scrape());
    // Histogram series (_bucket, _count, _sum) belong to their family.
    const known = (name: string) => exported.has(name) || exported.has(name.replace(/_(bucket|count|sum)$/, ""));
    const rules = readFileSync("deploy/prometheus/alerts.yml", "utf8");
    const dashboard = readFileSync("deploy/grafana/dashboards/smsgw.json", "utf8");
    const named = (text: string) => [...new Set(text.match(/\b(smsgw|temporal)_[a-z_]+\b/g) ?? [])];
    const alerts = [...rules.matchAll(/^\s*- alert: (\S+)/gm)].map((match) => match[1]);
    expect(alerts).toEqual([
      "SmsgwNoGatewayOnline",
      "SmsgwDeliverySuccessLow",
      "SmsgwBacklogGrowing",
      "SmsgwWebhookFailures",
      "SmsgwGatewaySilent",
      "SmsgwWorkflowTasksWaiting",
    ]);
    for (const name of [...named(rules), ...named(JSON.stringify(JSON.parse(dashboard)))]) {
      expect(known(name), `${name} is not exported`).toBe(true);
    }
  });
});
