// npm run bench:devices: many phones on one instance (or split over two), one kind at a time.
//
// For each kind of phone (BENCH_DEVICE_KINDS, default "stream,cable,smsgate": the gRPC stream, the
// original's Action Cable /cable, and SMSGate's app with its events stream), a fresh smsgw as
// `npm start` runs it (BENCH_INSTANCES of them, default 1, sharing PostgreSQL, Redis and a Temporal
// dev server of the bench's own), BENCH_DEVICES phones (default 10,000) registered and then connected
// all at once, and it prints:
//   - memory per connection (the servers' resident memory with every phone connected, less before);
//   - CPU per idle phone per minute (the servers' CPU over BENCH_IDLE_SECONDS with nothing sent);
//   - connects per second while all connect at once;
//   - accept → device p50/p99 at 2 msg/s (BENCH_STEADY_SECONDS) with all of them connected (from the
//     HTTP 202 to the phone holding the command; 0 when the phone had it first);
//   - after a restart of every instance (SIGTERM, started again at once): how long until every phone
//     is connected again, and how many were refused for good.
// The reference in the same run: the servers' memory and idle CPU with no phone at all.
import { type ChildProcess, spawn } from "node:child_process";
import { createGrpcTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { pino } from "pino";
import WebSocket from "ws";
import { loadConfig } from "../src/config.js";
import { ensureDatabase } from "../src/db/orm.js";
import { defaultBehaviour, SimulatedGateway } from "../src/simulator/simulated-gateway.js";
import { defaultSmsGateBehaviour, SmsGatePhone } from "../src/simulator/smsgate-phone.js";
import { devServerSetup, ensureLocalTemporal } from "../src/temporal/dev-server.js";
import { latencyLine, machine, processCpuMs, processRss, runBench } from "./harness.js";

type Kind = "stream" | "cable" | "smsgate";
const devices = Number(process.env.BENCH_DEVICES ?? 10_000);
const kinds = (process.env.BENCH_DEVICE_KINDS ?? "stream,cable,smsgate").split(",") as Kind[];
const instances = Number(process.env.BENCH_INSTANCES ?? 1);
const idleSeconds = Number(process.env.BENCH_IDLE_SECONDS ?? 60);
const steadySeconds = Number(process.env.BENCH_STEADY_SECONDS ?? 30);
const databaseUrl = "postgresql://postgres@127.0.0.1:5432/smsgw_bench_devices";
const redisUrl = "redis://127.0.0.1:6379/4";
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);

/** A phone of any kind, as the bench drives it. */
interface Phone {
  /** Connects (and, for SMSGate's app, registers); resolves once the server took it. */
  connect(): Promise<void>;
  /** Connections the server took so far (a reconnect adds one). */
  readonly connects: number;
  /** Refused for good (its key refused): it will not try again. */
  readonly refused: boolean;
  close(): Promise<void>;
}

/** The original's phone on /cable: subscribes to GatewayChannel, reports each send_sms delivered, reconnects. */
class CablePhone implements Phone {
  connects = 0;
  refused = false;
  private socket: WebSocket | undefined;
  private closed = false;
  private delayMs = 500;

  constructor(
    private readonly urls: string[],
    private readonly key: string,
    private readonly onCommand: (messageId: string) => void,
    private index = 0,
  ) {}

  connect(): Promise<void> {
    return new Promise((resolve) => {
      const url = `${this.urls[this.index % this.urls.length]?.replace(/^http/, "ws")}/cable?api_key=${this.key}`;
      const socket = new WebSocket(url, ["actioncable-v1-json"]);
      this.socket = socket;
      const identifier = JSON.stringify({ channel: "GatewayChannel" });
      let confirmed = false;
      socket.on("message", (data) => {
        const frame = JSON.parse(String(data)) as {
          type?: string;
          message?: { action?: string; message_id?: string };
        };
        if (frame.type === "welcome") socket.send(JSON.stringify({ command: "subscribe", identifier }));
        else if (frame.type === "confirm_subscription" && !confirmed) {
          confirmed = true;
          this.connects++;
          this.delayMs = 500;
          resolve();
        } else if (frame.type === "reject_subscription") this.refused = true;
        else if (frame.message?.action === "send_sms" && frame.message.message_id !== undefined) {
          const messageId = frame.message.message_id;
          this.onCommand(messageId);
          for (const status of ["sent", "delivered"])
            socket.send(
              JSON.stringify({
                command: "message",
                identifier,
                data: JSON.stringify({ action: "delivery_report", message_id: messageId, status }),
              }),
            );
        }
      });
      // Any answer but the upgrade fails the attempt, as a browser's WebSocket does (with a listener
      // here, ws leaves the request open: a 503 while an instance stops held a phone forever).
      socket.on("unexpected-response", (_request, response) => {
        if (response.statusCode === 401 || response.statusCode === 403) this.refused = true;
        // Aborts the handshake: ws then emits 'error' and 'close' (the retry below).
        socket.terminate();
      });
      socket.on("error", () => undefined);
      socket.on("close", () => {
        if (this.closed || this.refused) return resolve();
        // As an app does: try again after a pause that grows, with jitter, on the next address.
        this.index++;
        const delay = this.delayMs * (0.5 + Math.random());
        this.delayMs = Math.min(10_000, this.delayMs * 2);
        setTimeout(() => void this.connect().then(resolve), delay);
      });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.socket?.terminate();
  }
}

/** The gRPC stream phone (the simulator), each on its own HTTP/2 connection as a real phone is. */
class StreamPhone implements Phone {
  private readonly phone: SimulatedGateway;
  readonly refused = false;

  constructor(urls: string[], key: string, deviceId: string, onCommand: (messageId: string) => void) {
    this.phone = new SimulatedGateway(
      urls.map((baseUrl) => createGrpcTransport({ baseUrl })),
      key,
      deviceId,
      { ...defaultBehaviour, sendLatencyMs: 0 },
    );
    this.phone.onCommand((command) => onCommand(command.messageId));
  }

  get connects(): number {
    return this.phone.tally.connects;
  }

  connect(): Promise<void> {
    return this.phone.connect();
  }

  close(): Promise<void> {
    return this.phone.disconnect();
  }
}

/** SMSGate's app: registers with a registration token, holds its events stream, fetches and reports. */
class SmsGateAppPhone implements Phone {
  private readonly phone: SmsGatePhone;
  readonly refused = false;

  constructor(urls: string[], token: string, onCommand: (messageId: string) => void) {
    this.phone = new SmsGatePhone(
      urls.map((url) => `${url}/api/mobile/v1`),
      token,
      { ...defaultSmsGateBehaviour, sendLatencyMs: 0, retryMs: 1000 },
    );
    this.phone.onMessage((message) => onCommand(message.id));
  }

  get connects(): number {
    return this.phone.eventStreams;
  }

  /** Registers (not timed): as the app does, again after a pause when the server is busy. */
  register(): Promise<void> {
    return retried(() => this.phone.register());
  }

  connect(): Promise<void> {
    return retried(() => this.phone.start());
  }

  async close(): Promise<void> {
    this.phone.stop();
  }
}

let retriedOnce = false;

/** Runs `work` until it succeeds, after a pause that grows (with jitter), as an app does. */
async function retried(work: () => Promise<void>): Promise<void> {
  for (let delayMs = 500; ; delayMs = Math.min(10_000, delayMs * 2)) {
    try {
      return await work();
    } catch (error) {
      if (!retriedOnce) log(`(retrying, as an app does, after: ${String(error).slice(0, 200)})`);
      retriedOnce = true;
      await wait(delayMs * (0.5 + Math.random()));
    }
  }
}

/** One smsgw instance as `npm start` runs it, allowed as many open files as the machine lets it. */
class Instance {
  private child: ChildProcess | undefined;
  constructor(
    readonly port: number,
    private readonly env: Record<string, string>,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.child?.pid ?? 0;
  }

  async start(): Promise<void> {
    // Open files: the soft limit raised to the hard one (20,000 on these machines: 10,000 phones fit).
    this.child = spawn("sh", ["-c", 'ulimit -n "$(ulimit -Hn)" && exec sh scripts/start.sh'], {
      env: { ...process.env, ...this.env, PORT: String(this.port), HOST: "127.0.0.1" },
      stdio: ["ignore", "ignore", "inherit"],
    });
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`${this.url} exited with ${this.child.exitCode}`);
      const ok = await fetch(`${this.url}/up`).then(
        (response) => response.status === 200,
        () => false,
      );
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`${this.url} did not come up`);
      await wait(200);
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await Promise.race([exited, wait(20_000)]);
    if (child.exitCode === null) child.kill("SIGKILL");
  }
}

async function freshDatabase(): Promise<void> {
  await ensureDatabase(databaseUrl);
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  await client.query("drop schema public cascade; create schema public;");
  await client.end();
}

/** Runs `work` over `items`, `concurrency` at a time. */
async function limited<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}

async function cli(args: string[], env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, ["bin/smsgw.js", ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout?.on("data", (chunk) => {
    out += String(chunk);
  });
  await new Promise((resolve) => child.once("exit", resolve));
  return out.trim();
}

interface KindResult {
  kind: Kind;
  baseRss: number;
  rssPerPhoneKiB: number;
  baseHeap: number;
  heapPerPhoneKiB: number;
  idleCpuBase: number;
  idleCpuMsPerPhoneMinute: number;
  idleCoreShare: number;
  connectsPerSecond: number;
  connectSeconds: number;
  latency: number[];
  reconnectSeconds: number | null;
  stoppedSeconds: number;
  upSeconds: number;
  notBack: number;
  refused: number;
}

async function runKind(kind: Kind, temporalAddress: string): Promise<KindResult> {
  await freshDatabase();
  const env = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_TASK_QUEUE: `bench-devices-${kind}-${Date.now()}`,
    LOG_LEVEL: "warn",
    RATE_LIMIT_REQUESTS: "1000000",
    RATE_LIMIT_ANONYMOUS_REQUESTS: "1000000",
    AUTH_FAILURES_PER_MINUTE: "1000000",
    GATEWAY_SENDS_PER_MINUTE: "100000",
    SECRET_KEY_BASE: "bench-devices-only-not-a-secret-0123456789abcdef0123456789abcdef",
    DATA_DIR: ".data/bench-devices",
    // Each instance may hold every phone (after a restart they come back wherever they reach first);
    // npm start sizes its heap from this (heapMbFor).
    DEVICE_MAX_CONNECTIONS: String(devices),
  };
  const servers = Array.from({ length: instances }, (_, i) => new Instance(3700 + i, env));
  for (const server of servers) await server.start();
  const urls = servers.map((server) => server.url);
  const key = await cli(["keys", "create", "--kind", "client", "--name", "bench"], env);
  const pids = () => servers.map((server) => server.pid);
  const totalRss = () => pids().reduce((sum, pid) => sum + processRss(pid).total, 0);
  const totalCpu = () => pids().reduce((sum, pid) => sum + processCpuMs(pid), 0);
  /** The servers' live V8 heap (prom-client's nodejs_heap_size_used_bytes), in MiB. */
  const totalHeap = async () => {
    let bytes = 0;
    for (const url of urls) {
      const text = await fetch(`${url}/metrics`).then((response) => response.text());
      bytes += Number(/^nodejs_heap_size_used_bytes (\S+)$/m.exec(text)?.[1] ?? 0);
    }
    return bytes / 2 ** 20;
  };

  // The reference: the servers with no phone, idle (once the start has settled).
  await wait(20_000);
  const baseRss = totalRss();
  const baseHeap = await totalHeap();
  const idleBaseStart = totalCpu();
  await wait(idleSeconds * 1000);
  const idleCpuBase = totalCpu() - idleBaseStart;

  // Register every phone (not timed), each with its home instance first.
  const commandAt = new Map<string, number>();
  const onCommand = (messageId: string) => {
    if (!commandAt.has(messageId)) commandAt.set(messageId, performance.now());
  };
  const phones: Phone[] = [];
  const order = (i: number) => [...urls.slice(i % urls.length), ...urls.slice(0, i % urls.length)];
  log(`${kind}: registering ${devices} phones`);
  if (kind === "smsgate") {
    const token = await cli(["keys", "create", "--kind", "registration", "--name", "bench"], env);
    const apps = Array.from({ length: devices }, (_, i) => new SmsGateAppPhone(order(i), token, onCommand));
    await limited(apps, 32, (phone) => phone.register());
    phones.push(...apps);
  } else {
    const indexes = Array.from({ length: devices }, (_, i) => i);
    const registered: { key: string; deviceId: string; i: number }[] = [];
    await limited(indexes, 32, async (i) => {
      const response = await fetch(`${urls[i % urls.length]}/api/v1/gateway/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ device_id: `bench-${kind}-${i}`, name: `bench ${i}` }),
      });
      const body = (await response.json()) as { api_key: string; device_id: string };
      registered.push({ key: body.api_key, deviceId: body.device_id, i });
    });
    for (const { key: apiKey, deviceId, i } of registered.sort((a, b) => a.i - b.i)) {
      phones.push(
        kind === "stream"
          ? new StreamPhone(order(i), apiKey, deviceId, onCommand)
          : new CablePhone(order(i), apiKey, onCommand),
      );
    }
  }

  // All at once (as after an outage of the network): at most 1,000 handshakes in flight from here.
  log(`${kind}: connecting ${devices} phones at once`);
  const connectStart = performance.now();
  const progress = setInterval(() => {
    log(`${kind}: ${phones.filter((phone) => phone.connects > 0).length} connected`);
  }, 15_000);
  await limited(phones, 1000, (phone) => phone.connect());
  clearInterval(progress);
  const connectSeconds = (performance.now() - connectStart) / 1000;
  await wait(10_000);
  const rssAll = totalRss();
  const heapAll = await totalHeap();

  // Idle: nothing sent, every phone connected.
  const idleStart = totalCpu();
  await wait(idleSeconds * 1000);
  const idleCpu = totalCpu() - idleStart;

  // Steady 2 msg/s with all of them connected.
  log(`${kind}: 2 msg/s for ${steadySeconds} s`);
  const acceptedAt = new Map<string, number>();
  for (let i = 0; i < steadySeconds * 2; i++) {
    const tick = wait(500);
    void fetch(`${urls[0]}/api/v1/sms/send`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({ to: `+1415555${String(1000 + i).padStart(4, "0")}`, message: `devices ${i}` }),
    }).then(async (response) => {
      const at = performance.now();
      if (response.status === 202) acceptedAt.set(((await response.json()) as { message_id: string }).message_id, at);
    });
    await tick;
  }
  await wait(5000);
  const latency = [...acceptedAt].flatMap(([id, at]) => {
    const got = commandAt.get(id);
    return got === undefined ? [] : [Math.max(0, got - at)];
  });

  // A restart of every instance: each phone reconnects on its own.
  log(`${kind}: restarting`);
  const before = phones.map((phone) => phone.connects);
  const restartAt = performance.now();
  for (const server of servers) await server.stop();
  const stoppedSeconds = (performance.now() - restartAt) / 1000;
  for (const server of servers) await server.start();
  const upSeconds = (performance.now() - restartAt) / 1000;
  let reconnectSeconds: number | null = null;
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    const back = phones.filter((phone, i) => phone.connects > (before[i] ?? 0)).length;
    if (back === phones.length) {
      reconnectSeconds = (performance.now() - restartAt) / 1000;
      break;
    }
    await wait(250);
  }
  const notBack = phones.filter((phone, i) => phone.connects <= (before[i] ?? 0)).length;
  const refused = phones.filter((phone) => phone.refused).length;

  await limited(phones, 1000, (phone) => phone.close());
  for (const server of servers) await server.stop();
  return {
    kind,
    baseRss,
    rssPerPhoneKiB: ((rssAll - baseRss) * 1024) / devices,
    baseHeap,
    heapPerPhoneKiB: ((heapAll - baseHeap) * 1024) / devices,
    idleCpuBase: (idleCpuBase / idleSeconds) * 60,
    idleCpuMsPerPhoneMinute: ((idleCpu - idleCpuBase) / idleSeconds) * (60 / devices),
    idleCoreShare: idleCpu / (idleSeconds * 1000),
    connectsPerSecond: devices / connectSeconds,
    connectSeconds,
    latency,
    reconnectSeconds,
    stoppedSeconds,
    upSeconds,
    notBack,
    refused,
  };
}

async function main(): Promise<void> {
  const temporal = await ensureLocalTemporal({
    ...devServerSetup(loadConfig()),
    port: 7299,
    uiPort: undefined,
    dataDir: undefined,
    namespace: "default",
    logger: pino({ level: "warn" }),
  });
  const results: KindResult[] = [];
  try {
    for (const kind of kinds) results.push(await runKind(kind, temporal.address));
  } finally {
    await temporal.stop();
  }
  const lines = [
    `conditions: ${machine()}; ${devices} phones of each kind, one kind at a time, on ${instances} smsgw instance(s) as npm start runs them (scripts/start.sh, open files up to the hard limit), PostgreSQL 15 and Redis 7 on localhost, an in-memory Temporal dev server; the phones in the bench's own process, each on its own connection; idle ${idleSeconds} s, steady 2 msg/s for ${steadySeconds} s`,
    ...results.map((r) =>
      [
        `${r.kind}:`,
        `  memory per connection: ${r.rssPerPhoneKiB.toFixed(1)} KiB (servers' RSS ${r.baseRss.toFixed(0)} MiB with no phone, ${(r.baseRss + (r.rssPerPhoneKiB * devices) / 1024).toFixed(0)} MiB with ${devices})`,
        `  V8 heap per connection: ${r.heapPerPhoneKiB.toFixed(1)} KiB (live heap ${r.baseHeap.toFixed(0)} MiB with no phone, ${(r.baseHeap + (r.heapPerPhoneKiB * devices) / 1024).toFixed(0)} MiB with ${devices}; SMSGW_HEAP_MB ${process.env.SMSGW_HEAP_MB ?? "default"})`,
        `  idle CPU: ${r.idleCpuMsPerPhoneMinute.toFixed(2)} ms per phone per minute (servers at ${(r.idleCoreShare * 100).toFixed(1)} % of a core; with no phone ${(r.idleCpuBase / 600).toFixed(1)} %)`,
        `  all connecting at once: ${devices} in ${r.connectSeconds.toFixed(1)} s = ${r.connectsPerSecond.toFixed(0)} connects/s`,
        `  ${latencyLine("accept → device at 2 msg/s", r.latency)}`,
        `  after a restart: ${r.reconnectSeconds === null ? `${r.notBack} not back after 180 s` : `all back in ${r.reconnectSeconds.toFixed(1)} s`}; refused for good: ${r.refused} (stopped after ${r.stoppedSeconds.toFixed(1)} s, answering again after ${r.upSeconds.toFixed(1)} s)`,
      ].join("\n"),
    ),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

runBench(main);
