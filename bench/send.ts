// Benchmark of the outbound pipeline: REST sends through the real server (API + Temporal worker) to
// simulated phones on the real gRPC stream. Prints throughput, latency percentiles, peak memory and
// the conditions. Not a test: run it with `npm run bench:send` (options as environment variables).
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
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

  // Wall-clock times per message id, matched up at the end: the load generator reports its sends
  // from another process, sometimes after the phone already has the message.
  const wallClock = () => performance.timeOrigin + performance.now();
  const acceptedAt = new Map<string, number>();
  const deviceAt = new Map<string, number>();
  const deliveredAt = new Map<string, number>();
  let delivered = 0;
  let allDelivered: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    allDelivered = resolve;
  });
  server.deps.events.listen(({ payload }) => {
    if (payload.event !== "sms_delivered" || payload.message_id === undefined) return;
    deliveredAt.set(payload.message_id, wallClock());
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
      if (!deviceAt.has(command.messageId)) deviceAt.set(command.messageId, wallClock());
    });
    await phone.connect();
    phones.push(phone);
  }
  const { key } = await server.deps.keys.create({ scope: "client", name: "bench" });

  const memory = rssSampler();

  // The load generator runs in its own process; times are wall-clock, comparable across processes.
  const acceptLatency: number[] = [];
  const started = performance.now();
  const load = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      fileURLToPath(new URL("./load.ts", import.meta.url)),
      url,
      key,
      String(messages),
      String(concurrency),
    ],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const answers = createInterface({ input: load.stdout });
  answers.on("line", (line) => {
    const {
      id,
      sentAt,
      acceptedAt: answeredAt,
    } = JSON.parse(line) as { id: string; sentAt: number; acceptedAt: number };
    acceptedAt.set(id, sentAt);
    acceptLatency.push(answeredAt - sentAt);
  });
  const code = await new Promise<number | null>((resolve) => load.once("exit", resolve));
  if (code !== 0) throw new Error(`the load generator exited with ${code}`);
  const acceptSeconds = (performance.now() - started) / 1000;
  const timeout = setTimeout(() => allDelivered(), 300_000);
  await done;
  clearTimeout(timeout);
  const totalSeconds = (performance.now() - started) / 1000;
  const peakMiB = memory.stop();
  const since = (times: Map<string, number>) =>
    [...times].flatMap(([id, at]) => {
      const accepted = acceptedAt.get(id);
      return accepted === undefined ? [] : [at - accepted];
    });
  const deviceLatency = since(deviceAt);
  const deliveredLatency = since(deliveredAt);

  const lines = [
    `bench:send — ${new Date().toISOString()}`,
    `conditions: ${messages} messages, ${concurrency} concurrent REST clients, ${gatewayCount} simulated gateways (device latency ${deviceLatencyMs} ms, all delivered), one smsgw process (API + worker + the simulated phones), the REST clients in a second process, Temporal dev server (SQLite, in memory), PostgreSQL 15 and Redis 7 on localhost; ${machine()}`,
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
