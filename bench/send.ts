// Benchmark of the outbound pipeline: REST sends through the real server (API + Temporal worker) to
// simulated phones on the real gRPC stream. Prints throughput, latency percentiles, peak memory and
// the conditions. Not a test: run it with `npm run bench:send` (options as environment variables).
import { cpus, totalmem } from "node:os";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { pino } from "pino";
import { loadConfig } from "../src/config.js";
import { ensureDatabase } from "../src/db/orm.js";
import { serve } from "../src/serve.js";
import { defaultBehaviour, SimulatedGateway } from "../src/simulator/simulated-gateway.js";
import { ensureLocalTemporal } from "../src/temporal/dev-server.js";

const messages = Number(process.env.BENCH_MESSAGES ?? 2000);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32);
const gatewayCount = Number(process.env.BENCH_GATEWAYS ?? 10);
const deviceLatencyMs = Number(process.env.BENCH_DEVICE_LATENCY_MS ?? 0);
const databaseUrl = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/smsgw_bench";

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

function summary(name: string, values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  return `${name.padEnd(28)} p50 ${percentile(sorted, 50).toFixed(1).padStart(8)} ms   p99 ${percentile(sorted, 99).toFixed(1).padStart(8)} ms   max ${(sorted.at(-1) ?? Number.NaN).toFixed(1).padStart(8)} ms   (n=${sorted.length})`;
}

async function main(): Promise<void> {
  const logger = pino({ level: "warn" });
  const temporal = process.env.TEMPORAL_ADDRESS
    ? { address: process.env.TEMPORAL_ADDRESS, stop: async () => undefined }
    : await ensureLocalTemporal({
        cli: process.env.TEMPORAL_CLI,
        port: 7277,
        uiPort: undefined,
        dataDir: undefined,
        namespace: "default",
        logger,
      });
  await ensureDatabase(databaseUrl);
  const config = loadConfig({
    ...process.env,
    HOST: "127.0.0.1",
    PORT: "0",
    DATABASE_URL: databaseUrl,
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_TASK_QUEUE: `bench-${Date.now()}`,
    LOG_LEVEL: "warn",
    RATE_LIMIT_REQUESTS: "1000000",
    // Android allows ~30 SMS per minute per phone; the benchmark measures the server, not that cap.
    GATEWAY_SENDS_PER_MINUTE: "100000",
  });
  const server = await serve(config, logger, { api: true, worker: true, schedules: false });
  const url = server.url ?? "";
  await server.deps.orm.em.getConnection().execute("update gateways set active = false");

  const acceptedAt = new Map<string, number>();
  const deviceLatency: number[] = [];
  const deliveredLatency: number[] = [];
  let delivered = 0;
  let allDelivered: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    allDelivered = resolve;
  });
  server.deps.events.listen(({ payload }) => {
    if (payload.event !== "sms_delivered" || payload.message_id === undefined) return;
    const accepted = acceptedAt.get(payload.message_id);
    if (accepted !== undefined) deliveredLatency.push(performance.now() - accepted);
    if (++delivered === messages) allDelivered();
  });

  const transport = createGrpcTransport({ baseUrl: url });
  const phones: SimulatedGateway[] = [];
  for (let i = 0; i < gatewayCount; i++) {
    const { gateway, apiKey } = await server.deps.gateways.register({
      deviceId: `bench-${Date.now()}-${i}`,
      name: `bench ${i}`,
    });
    const phone = new SimulatedGateway(transport, apiKey, gateway.deviceId, {
      ...defaultBehaviour,
      sendLatencyMs: deviceLatencyMs,
    });
    phone.onCommand((command) => {
      const accepted = acceptedAt.get(command.messageId);
      if (accepted !== undefined) deviceLatency.push(performance.now() - accepted);
    });
    await phone.connect();
    phones.push(phone);
  }
  const { key } = await server.deps.keys.create({ scope: "client", name: "bench" });

  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 100);

  const acceptLatency: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < messages) {
        const i = next++;
        const t0 = performance.now();
        const response = await fetch(`${url}/api/v1/sms/send`, {
          method: "POST",
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
          body: JSON.stringify({ to: "+14155552671", message: `bench message ${i}` }),
        });
        const body = (await response.json()) as { message_id: string };
        const t1 = performance.now();
        if (response.status !== 202) throw new Error(`send answered ${response.status}`);
        acceptedAt.set(body.message_id, t0);
        acceptLatency.push(t1 - t0);
      }
    }),
  );
  const acceptSeconds = (performance.now() - started) / 1000;
  const timeout = setTimeout(() => allDelivered(), 300_000);
  await done;
  clearTimeout(timeout);
  const totalSeconds = (performance.now() - started) / 1000;
  clearInterval(sampler);

  const lines = [
    `bench:send — ${new Date().toISOString()}`,
    `conditions: ${messages} messages, ${concurrency} concurrent REST clients, ${gatewayCount} simulated gateways (device latency ${deviceLatencyMs} ms, all delivered), one smsgw process (API + worker) and the clients in the same process, Temporal dev server (SQLite, in memory), PostgreSQL 15 and Redis 7 on localhost; Node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB`,
    `accepted:  ${(messages / acceptSeconds).toFixed(0)} sends/s (${messages} in ${acceptSeconds.toFixed(1)} s)`,
    `delivered: ${(delivered / totalSeconds).toFixed(0)} messages/s end to end (${delivered} of ${messages} in ${totalSeconds.toFixed(1)} s)`,
    summary("accept (HTTP 202)", acceptLatency),
    summary("accept -> device", deviceLatency),
    summary("accept -> delivered", deliveredLatency),
    `peak RSS:  ${(peakRss / 2 ** 20).toFixed(0)} MiB (server, worker, simulators and clients together)`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);

  await Promise.all(phones.map((phone) => phone.disconnect()));
  await server.stop();
  await temporal.stop();
  process.exit(0);
}

await main();
