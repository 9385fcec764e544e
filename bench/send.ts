// Benchmark of the outbound pipeline: REST sends through the real server (API + Temporal worker) to
// simulated phones on the real gRPC stream. Prints throughput, latency percentiles, peak memory and
// the conditions. Not a test: run it with `npm run bench:send` (options as environment variables).
import { createGrpcTransport } from "@connectrpc/connect-node";
import { defaultBehaviour, SimulatedGateway } from "../src/simulator/simulated-gateway.js";
import { benchServer, latencyLine, machine, rssSampler } from "./harness.js";

const messages = Number(process.env.BENCH_MESSAGES ?? 2000);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32);
const gatewayCount = Number(process.env.BENCH_GATEWAYS ?? 10);
const deviceLatencyMs = Number(process.env.BENCH_DEVICE_LATENCY_MS ?? 0);

async function main(): Promise<void> {
  // Android allows ~30 SMS per minute per phone; the benchmark measures the server, not that cap.
  const server = await benchServer(
    { GATEWAY_SENDS_PER_MINUTE: "100000" },
    { api: true, worker: true, schedules: false },
  );
  const url = server.url;
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

  const memory = rssSampler();

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
  const peakMiB = memory.stop();

  const lines = [
    `bench:send — ${new Date().toISOString()}`,
    `conditions: ${messages} messages, ${concurrency} concurrent REST clients, ${gatewayCount} simulated gateways (device latency ${deviceLatencyMs} ms, all delivered), one smsgw process (API + worker) and the clients in the same process, Temporal dev server (SQLite, in memory), PostgreSQL 15 and Redis 7 on localhost; ${machine()}`,
    `accepted:  ${(messages / acceptSeconds).toFixed(0)} sends/s (${messages} in ${acceptSeconds.toFixed(1)} s)`,
    `delivered: ${(delivered / totalSeconds).toFixed(0)} messages/s end to end (${delivered} of ${messages} in ${totalSeconds.toFixed(1)} s)`,
    latencyLine("accept (HTTP 202)", acceptLatency),
    latencyLine("accept -> device", deviceLatency),
    latencyLine("accept -> delivered", deliveredLatency),
    `peak RSS:  ${peakMiB} MiB (server, worker, simulators and clients together)`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);

  await Promise.all(phones.map((phone) => phone.disconnect()));
  await server.stopAll();
  process.exit(0);
}

await main();
