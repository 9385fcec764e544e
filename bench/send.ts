// bench:send — the outbound pipeline against the engine's floor, in one run on one machine.
//
// 1. floor: the lean message workflow with no project code (bench/floor), on the same dev server:
//    throughput (run.ts) and the latency from a start to its first local activity (latency.ts);
// 2. bare endpoint: one INSERT per send (bench/bare-endpoint.ts), same PostgreSQL, pool and load;
// 3. smsgw (`smsgw serve`, one process, as `npm start` runs it) with instant simulated phones:
//    a burst, then a steady 2 msg/s; then BENCH_SMSGATE_RATE (20) msg/s through phones speaking the
//    SMSGate app's protocol (events stream, GET /message, PATCH /message) in their place, joined to
//    one SMSGate account, sent through smsgw's REST and through SMSGate's third-party API;
//    Between them, the cost of a message with phones answering at once, as real ones do, and as
//    real ones do with two webhook events subscribed, CPU per process beside the floor's workflow;
// 4. smsgw with a small backlog limit under a send rate above what it drains (back-pressure).
// The Temporal dev server is file-backed with npm start's own settings (WAL). Prints every figure,
// the conditions and the ratios. Not a test: `npm run bench:send` (options as environment variables).
import { type ChildProcess, spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { NativeConnection } from "@temporalio/worker";
import pg from "pg";
import { type Logger, pino } from "pino";
import { loadConfig } from "../src/config.js";
import { ensureDatabase } from "../src/db/orm.js";
import { defaultBehaviour, SimulatedGateway } from "../src/simulator/simulated-gateway.js";
import { defaultSmsGateBehaviour, SmsGatePhone } from "../src/simulator/smsgate-phone.js";
import { devServerSetup, ensureLocalTemporal } from "../src/temporal/dev-server.js";
import { ensureSearchAttributes } from "../src/temporal/search-attributes.js";
import { histogramOf, latencyLine, machine, peakRss, percentile, pidsNamed, processCpuMs } from "./harness.js";

const burstMessages = Number(process.env.BENCH_MESSAGES ?? 2000);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32);
const gatewayCount = Number(process.env.BENCH_GATEWAYS ?? 10);
const floorRuns = Number(process.env.BENCH_FLOOR_RUNS ?? 1000);
const steadySeconds = Number(process.env.BENCH_STEADY_SECONDS ?? 30);
/** The pause between the burst's last delivery and the steady phase. */
const settleMs = 3000;
/** The load of the cost phases (phones answering at once, then as real phones do). */
const costMessages = Number(process.env.BENCH_COST_MESSAGES ?? 600);
const costRate = Number(process.env.BENCH_COST_RATE ?? 20);
const overloadRate = Number(process.env.BENCH_OVERLOAD_RATE ?? 120);
const overloadSeconds = Number(process.env.BENCH_OVERLOAD_SECONDS ?? 15);
const overloadBacklog = Number(process.env.BENCH_OVERLOAD_BACKLOG ?? 100);
/** The rate of the phases through phones running SMSGate's app (issue 34's target: p50 ≤ 20 ms at 20 msg/s). */
const smsGateRate = Number(process.env.BENCH_SMSGATE_RATE ?? 20);
const databaseUrl = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/smsgw_bench";
const temporalPort = Number(process.env.BENCH_TEMPORAL_PORT ?? 7288);
// BENCH_ONLY=burst (the burst and the steady phase) or BENCH_ONLY=overload runs that alone, without
// the floor or the bare endpoint (its ratios print as NaN): for trying a change quickly.
// BENCH_ONLY=smsgate runs the floor, the bare endpoint and the SMSGate phases only; BENCH_ONLY=cost
// the floor, the bare endpoint and the cost phases (with and without webhooks) only.
// BENCH_SERVER_LOG=FILE keeps the servers' logs.
const only = process.env.BENCH_ONLY as "burst" | "overload" | "smsgate" | "cost" | undefined;
/** One phase alone: the floor and the bare endpoint are skipped (not for the SMSGate phases: their references). */
const withoutReferences = only === "burst" || only === "overload";
/** The burst and the steady phase are skipped. */
const withoutBurst = only === "overload" || only === "smsgate" || only === "cost";
/** The cost phases are skipped. */
const withoutCost = only === "overload" || only === "smsgate";
const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
const root = here("..");
const wallClock = () => performance.timeOrigin + performance.now();
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs a TypeScript file as a child process; resolves with its stdout lines once it exits. */
function runTs(
  file: string,
  args: string[],
  onLine?: (line: string) => void,
  env: Record<string, string> = {},
): Promise<string[]> {
  const child = spawn(process.execPath, ["--import", "tsx", file, ...args], {
    stdio: ["ignore", "pipe", "inherit"],
    cwd: root,
    env: { ...process.env, ...env },
  });
  const lines: string[] = [];
  createInterface({ input: child.stdout }).on("line", (line) => {
    lines.push(line);
    onLine?.(line);
  });
  return new Promise((resolve, reject) =>
    child.once("exit", (code) => (code === 0 ? resolve(lines) : reject(new Error(`${file} exited with ${code}`)))),
  );
}

/** Starts a long-running TypeScript child; resolves once it prints `ready` or answers /up. */
async function startChild(
  args: string[],
  env: Record<string, string>,
  upUrl?: string,
  command = process.execPath,
): Promise<ChildProcess> {
  const child = spawn(command, args, {
    stdio: ["ignore", "pipe", "inherit"],
    cwd: root,
    env: { ...process.env, ...env },
  });
  const log = process.env.BENCH_SERVER_LOG;
  const ready = new Promise<void>((resolve) =>
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (line === "ready") resolve();
      else if (log !== undefined) appendFileSync(log, `${line}\n`);
    }),
  );
  if (upUrl === undefined) await ready;
  else {
    for (;;) {
      const status = await fetch(`${upUrl}/up`).then(
        (r) => r.status,
        () => 0,
      );
      if (status === 200) break;
      if (child.exitCode !== null) throw new Error("the server exited");
      await wait(200);
    }
  }
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

interface Sent {
  status: number;
  id?: string;
  error?: string;
  retryAfter?: string | null;
  sentAt: number;
  acceptedAt: number;
}

/** Drives load.ts against `url`; returns every answer and how long the sending took. */
async function load(
  url: string,
  key: string,
  total: number,
  inFlight: number,
  rate?: number,
  env: Record<string, string> = {},
) {
  const lines = await runTs(
    here("./load.ts"),
    [url, key, String(total), String(inFlight), ...(rate ? [String(rate)] : [])],
    undefined,
    env,
  );
  const sent = lines.map((line) => JSON.parse(line) as Sent);
  // From the first request to the last answer: the load generator's own start-up is not counted.
  const seconds =
    sent.length === 0
      ? Number.NaN
      : (Math.max(...sent.map((s) => s.acceptedAt)) - Math.min(...sent.map((s) => s.sentAt))) / 1000;
  return { sent, seconds };
}

/** CPU used (ms) by the given processes between two readings. */
function cpuMeter(pids: () => number[]) {
  const read = () => pids().reduce((sum, pid) => sum + processCpuMs(pid), 0);
  const start = read();
  return () => read() - start;
}

/** One smsgw server process, its phones, its client key, and how to read its messages back. */
async function smsgwRun(temporalAddress: string, env: Record<string, string>, db: pg.Pool) {
  const port = 3300 + Math.floor(Math.random() * 500);
  const url = `http://127.0.0.1:${port}`;
  const serverEnv = {
    PORT: String(port),
    HOST: "127.0.0.1",
    DATABASE_URL: databaseUrl,
    // The machine's Redis, whose commands the cost phases count (unset, smsgw would embed its own).
    REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_TASK_QUEUE: `bench-${Date.now()}`,
    LOG_LEVEL: "warn",
    RATE_LIMIT_REQUESTS: "1000000",
    // The cost phase with webhooks posts to a receiver in the bench process, on loopback.
    WEBHOOK_ALLOW_PRIVATE_TARGETS: "true",
    GATEWAY_SENDS_PER_MINUTE: "100000",
    ...env,
  };
  // As npm start runs it (scripts/start.sh execs node, so the pid is the server's). BENCH_SERVER_FLAGS
  // passes more Node flags (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof).
  const flags = process.env.BENCH_SERVER_FLAGS ?? "";
  const server = await startChild(["scripts/start.sh"], { ...serverEnv, SMSGW_NODE_FLAGS: flags }, url, "sh");
  const [key] = await runTs("bin/smsgw.js", ["keys", "create", "--kind", "client", "--name", "bench"]);
  if (key === undefined) throw new Error("no key");
  await db.query("update gateways set active = false");
  const deviceAt = new Map<string, number>();
  const phones: SimulatedGateway[] = [];
  const smsGate: SmsGatePhone[] = [];
  const transport = createGrpcTransport({ baseUrl: url });
  for (let i = 0; i < gatewayCount; i++) {
    const registered = await fetch(`${url}/api/v1/gateway/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ device_id: `bench-${Date.now()}-${i}`, name: `bench ${i}` }),
    });
    const body = (await registered.json()) as { api_key: string; device_id: string };
    const phone = new SimulatedGateway(transport, body.api_key, body.device_id, {
      ...defaultBehaviour,
      sendLatencyMs: 0,
    });
    phone.onCommand((command) => {
      if (!deviceAt.has(command.messageId)) deviceAt.set(command.messageId, wallClock());
    });
    await phone.connect();
    phones.push(phone);
  }
  /** Delivery times (ms since the epoch) of these messages, once every one of them ended. */
  const deliveredTimes = async (ids: string[], timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await db.query<{ id: string; at: number | null; done: boolean }>(
        `select id, extract(epoch from delivered_at) * 1000 as at,
                status in ('delivered', 'failed', 'expired', 'cancelled') as done
           from messages where id = any($1)`,
        [ids],
      );
      if (rows.every((row) => row.done) || Date.now() > deadline) {
        return new Map(rows.flatMap((row) => (row.at === null ? [] : [[row.id, Number(row.at)] as const])));
      }
      await wait(200);
    }
  };
  return {
    url,
    key,
    pid: server.pid ?? 0,
    deviceAt,
    deliveredTimes,
    /** How many commands each phone has been given so far. */
    spread: () => phones.map((phone) => phone.tally.commands),
    /** Makes every stream phone behave so from now on. */
    behave: (patch: Parameters<SimulatedGateway["behave"]>[0]) => {
      for (const phone of phones) phone.behave(patch);
    },
    /** Each acknowledgement's time from the phone to its receipt (the server answers once it is durable). */
    ackReceipts: () => phones.flatMap((phone) => phone.ackReceiptMs),
    /**
     * Puts phones running the SMSGate app in place of the stream phones (those are made inactive):
     * joined to the SMSGate account `account` (`login:password`), told on their events stream,
     * fetching with `GET /message`.
     * Returns when each fetched each message.
     */
    async smsGatePhones(count: number, account: string): Promise<Map<string, number>> {
      const [token] = await runTs("bin/smsgw.js", ["keys", "create", "--kind", "registration", "--name", "bench"]);
      if (token === undefined) throw new Error("no registration token");
      await db.query("update gateways set active = false");
      const fetchedAt = new Map<string, number>();
      for (let i = 0; i < count; i++) {
        const phone = new SmsGatePhone(`${url}/api/mobile/v1`, token, { ...defaultSmsGateBehaviour, sendLatencyMs: 0 });
        phone.onMessage((message) => {
          if (!fetchedAt.has(message.id)) fetchedAt.set(message.id, wallClock());
        });
        // Each joins the account (an account's messages go to its own phones only).
        const [login = "", password = ""] = account.split(":");
        await phone.register({ login, password });
        await phone.start();
        smsGate.push(phone);
      }
      return fetchedAt;
    },
    /**
     * An SMSGate account (`keys create --kind account`) for SMSGate's client library, and how to find
     * smsgw's id of each message sent under SMSGate's ids (one recipient each).
     */
    async smsGateAccount(): Promise<{ credentials: string; idsOf: (ids: string[]) => Promise<Map<string, string>> }> {
      const [line] = await runTs("bin/smsgw.js", ["keys", "create", "--kind", "account", "--name", "bench"]);
      if (line === undefined) throw new Error("no account");
      return {
        credentials: line.replace(" ", ":"),
        async idsOf(ids) {
          const { rows } = await db.query<{ id: string; ext_id: string }>(
            "select id, ext_id from messages where ext_id = any($1)",
            [ids],
          );
          return new Map(rows.map((row) => [row.ext_id, row.id]));
        },
      };
    },
    /**
     * Subscribes a webhook endpoint to `events`: a receiver in this process that answers 200 at once.
     * Returns how many deliveries it received so far, and a stop that removes the webhook.
     */
    async webhooks(events: string[]): Promise<{ received: () => number; stop: () => Promise<void> }> {
      let received = 0;
      const receiver = createServer((request, response) => {
        request.resume();
        request.on("end", () => {
          received += 1;
          response.end("ok");
        });
      });
      await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
      const port = (receiver.address() as AddressInfo).port;
      const [admin] = await runTs("bin/smsgw.js", ["keys", "create", "--kind", "admin", "--name", "bench hooks"]);
      const made = await fetch(`${url}/api/v1/admin/webhooks`, {
        method: "POST",
        headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
        body: JSON.stringify({ url: `http://127.0.0.1:${port}/hook`, events }),
      });
      const { id } = (await made.json()) as { id: number };
      if (made.status !== 201) throw new Error(`the webhook was not made: ${made.status}`);
      return {
        received: () => received,
        async stop() {
          await fetch(`${url}/api/v1/admin/webhooks/${id}`, {
            method: "DELETE",
            headers: { authorization: `Bearer ${admin}` },
          });
          await new Promise((resolve) => receiver.close(resolve));
        },
      };
    },
    async stop() {
      for (const phone of smsGate) phone.stop();
      await Promise.all(phones.map((phone) => phone.disconnect()));
      await stopChild(server);
    },
  };
}

function latencies(sent: Sent[], times: Map<string, number>): number[] {
  return sent.flatMap((s) => {
    const at = s.id === undefined ? undefined : times.get(s.id);
    return at === undefined ? [] : [at - s.sentAt];
  });
}

/**
 * Where the slowest message of a phase (by accept -> delivered) spent its time, in ms after its
 * request left: stored (the insert's transaction began), answered, dispatched, workflow began, at
 * the device, delivered.
 */
async function slowestTimeline(
  db: pg.Pool,
  sent: Sent[],
  deviceAt: Map<string, number>,
  delivered: Map<string, number>,
): Promise<string> {
  let slowest: { send: Sent; id: string; deliveredAt: number } | undefined;
  for (const send of sent) {
    const deliveredAt = send.id === undefined ? undefined : delivered.get(send.id);
    if (send.id === undefined || deliveredAt === undefined) continue;
    if (slowest === undefined || deliveredAt - send.sentAt > slowest.deliveredAt - slowest.send.sentAt) {
      slowest = { send, id: send.id, deliveredAt };
    }
  }
  if (slowest === undefined) return "slowest: none delivered";
  const { rows } = await db.query<Record<"stored" | "started" | "dispatched", number | null>>(
    `select extract(epoch from created_at) * 1000 as stored, extract(epoch from workflow_started_at) * 1000 as started,
            extract(epoch from dispatched_at) * 1000 as dispatched
       from messages where id = $1`,
    [slowest.id],
  );
  const row = rows[0];
  const sentAt = slowest.send.sentAt;
  const at = (time: number | null | undefined) =>
    time === null || time === undefined ? "?" : `+${(Number(time) - sentAt).toFixed(1)}`;
  return `slowest: stored ${at(row?.stored)}, answered ${at(slowest.send.acceptedAt)}, dispatched ${at(row?.dispatched)}, workflow began ${at(row?.started)}, at the device ${at(deviceAt.get(slowest.id))}, delivered ${at(slowest.deliveredAt)} ms`;
}

const p = (values: number[], q: number) =>
  percentile(
    [...values].sort((a, b) => a - b),
    q,
  );

/** A dev server of the bench's own with npm start's settings, in a new data directory; gone with the bench. */
async function devServer(logger: Logger) {
  const dataDir = mkdtempSync(join(tmpdir(), "smsgw-bench-"));
  const temporal = await ensureLocalTemporal({
    ...devServerSetup(loadConfig()),
    port: temporalPort,
    uiPort: undefined,
    dataDir,
    namespace: "default",
    logger,
  });
  if (temporal.pid === undefined)
    throw new Error(`port ${temporalPort} is taken: the bench needs a dev server of its own`);
  const pid = temporal.pid;
  // Whatever happens, the dev server this run started goes with it.
  const kill = () => {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // Already stopped.
    }
  };
  process.once("exit", kill);
  const connection = await NativeConnection.connect({ address: temporal.address });
  await ensureSearchAttributes(connection, "default");
  await connection.close();
  return {
    address: temporal.address,
    pid,
    async stop() {
      process.off("exit", kill);
      await temporal.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function main(): Promise<void> {
  const logger = pino({ level: "warn" });
  // The CLI children (keys create) read the database from the environment too.
  process.env.DATABASE_URL = databaseUrl;
  // The floor and smsgw each get a fresh dev server (same settings, same port): the floor's thousand
  // workflows would otherwise be history, caches and heap that the one measured after it pays for.
  const floorTemporal = withoutReferences ? undefined : await devServer(logger);
  // A fresh database per run: messages left queued by an earlier run would be swept into this one.
  const admin = new pg.Client({ connectionString: databaseUrl.replace(/\/[^/]+$/, "/postgres") });
  await admin.connect();
  await admin.query(`drop database if exists "${new URL(databaseUrl).pathname.slice(1)}" with (force)`);
  await admin.end();
  await ensureDatabase(databaseUrl);
  const db = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  const out: string[] = [];
  const say = (line: string) => {
    out.push(line);
    process.stderr.write(`${line}\n`);
  };

  // 1. The engine's floor.
  const floorCpu = cpuMeter(() => (floorTemporal === undefined ? [] : [floorTemporal.pid]));
  const [floorLine] =
    floorTemporal === undefined
      ? ['{"perSecond":null,"nodeCpuMs":0,"total":0}']
      : await runTs(here("./floor/run.ts"), [floorTemporal.address, String(floorRuns), "64"]);
  const floor = JSON.parse(floorLine ?? "{}") as { perSecond: number; nodeCpuMs: number; total: number };
  const floorTemporalMs = floorCpu();
  const floorCpuPer = (floorTemporalMs + floor.nodeCpuMs) / floor.total;
  const floorSplit = `dev server ${(floorTemporalMs / floor.total).toFixed(1)}, Node ${(floor.nodeCpuMs / floor.total).toFixed(1)}`;
  const [floorLatencyLine] =
    floorTemporal === undefined ? ["{}"] : await runTs(here("./floor/latency.ts"), [floorTemporal.address, "60"]);
  await floorTemporal?.stop();
  const floorLatency = JSON.parse(floorLatencyLine ?? "{}") as Record<
    "startP50" | "startP99" | "activityP50" | "activityP99",
    number
  >;
  say(
    `floor:     ${Number(floor.perSecond).toFixed(1)} workflows/s, ${floorCpuPer.toFixed(1)} ms CPU per workflow (dev server + Node), ${floor.total} runs, 64 in flight`,
  );

  // 2. The bare endpoint.
  const barePort = 3900 + Math.floor(Math.random() * 90);
  const bare = withoutReferences
    ? undefined
    : await startChild(["--import", "tsx", here("./bare-endpoint.ts"), String(barePort), databaseUrl], {});
  const bareRun = bare
    ? await load(`http://127.0.0.1:${barePort}`, "none", burstMessages, concurrency)
    : { sent: [], seconds: Number.NaN };
  if (bare) await stopChild(bare);
  const bareRate = burstMessages / bareRun.seconds;
  const bareAccept = bareRun.sent.map((s) => s.acceptedAt - s.sentAt);
  say(`bare:      ${bareRate.toFixed(0)} inserts/s accepted, p99 ${p(bareAccept, 99).toFixed(1)} ms`);

  // 3. smsgw: burst, then steady.
  const temporal = await devServer(logger);
  const temporalPid = temporal.pid;
  const run = await smsgwRun(temporal.address, {}, db);
  const postgres = () => pidsNamed("postgres");
  const cpu = {
    server: cpuMeter(() => [run.pid]),
    temporal: cpuMeter(() => [temporalPid]),
    postgres: cpuMeter(postgres),
  };
  const memory = peakRss({ server: run.pid, temporal: temporalPid });
  const serverCpuBefore = processCpuMs(run.pid);
  const burst = await load(run.url, run.key, withoutBurst ? 0 : burstMessages, concurrency);
  const acceptingCpuMs = processCpuMs(run.pid) - serverCpuBefore;
  const accepted = burst.sent.filter((s) => s.status === 202);
  if (process.env.BENCH_DUMP !== undefined) writeFileSync(process.env.BENCH_DUMP, JSON.stringify(burst.sent));
  const burstIds = accepted.flatMap((s) => (s.id === undefined ? [] : [s.id]));
  const burstStart = Math.min(...burst.sent.map((s) => s.sentAt));
  const burstDelivered = await run.deliveredTimes(burstIds, 600_000);
  const drainSeconds = (Math.max(...burstDelivered.values()) - burstStart) / 1000;
  // Equally loaded phones take turns: the burst's commands per phone (a failover or resend counts too).
  const spread = run.spread();
  const cpuMs = { server: cpu.server(), temporal: cpu.temporal(), postgres: cpu.postgres() };
  const peaks = memory.stop();
  const acceptRate = accepted.length / burst.seconds;
  const drainRate = burstDelivered.size / drainSeconds;
  const cpuPer = (cpuMs.server + cpuMs.temporal + cpuMs.postgres) / Math.max(1, burstDelivered.size);
  const acceptLatency = burst.sent.map((s) => s.acceptedAt - s.sentAt);
  const burstAcks = run.ackReceipts();
  const ackDurable = histogramOf(
    await fetch(`${run.url}/metrics`).then((response) => response.text()),
    "smsgw_device_ack_record_seconds",
  );
  say(
    `burst:     ${accepted.length} of ${burstMessages} accepted at ${acceptRate.toFixed(0)}/s; ${burstDelivered.size} delivered in ${drainSeconds.toFixed(1)} s (${drainRate.toFixed(1)} msg/s)`,
  );

  const steadyCount = withoutBurst ? 0 : Math.round(steadySeconds * 2);
  // Steady state: the burst's last workflows end before the steady phase begins.
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  const steady = await load(run.url, run.key, steadyCount, 4, 2);
  if (process.env.BENCH_DUMP !== undefined)
    writeFileSync(`${process.env.BENCH_DUMP}.steady`, JSON.stringify(steady.sent));
  const steadyIds = steady.sent.flatMap((s) => (s.id === undefined ? [] : [s.id]));
  const steadyDelivered = await run.deliveredTimes(steadyIds, 60_000);
  const steadyDevice = latencies(steady.sent, run.deviceAt);
  const steadyEnd = latencies(steady.sent, steadyDelivered);
  const slowest = await slowestTimeline(db, steady.sent, run.deviceAt, steadyDelivered);
  // The cost of a message in each part, with phones that answer at once (as above: a whole workflow
  // then runs as one task, with no signal), then with phones that answer as real ones do: `sent` 1–3 s
  // after the command, `delivered` 2–10 s after that. The same load both times; each part's CPU over
  // the phase less its idle CPU over as long (measured just before), per delivered message.
  const idleRates = async () => {
    const meters = [cpuMeter(() => [run.pid]), cpuMeter(() => [temporalPid]), cpuMeter(postgres)];
    await new Promise((resolve) => setTimeout(resolve, 5000));
    return meters.map((meter) => meter() / 5000);
  };
  /** What the whole machine's PostgreSQL and Redis did so far, and the bytes over loopback. */
  const counters = async () => {
    const { rows } = await db.query<{ commits: string; rows: string; wal: string }>(
      `select sum(xact_commit)::text as commits, sum(tup_inserted + tup_updated + tup_deleted)::text as rows,
              pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text as wal from pg_stat_database`,
    );
    const redisInfo = await new Promise<string>((resolve) => {
      const cli = spawn("redis-cli", ["-p", "6379", "info", "stats"], { stdio: ["ignore", "pipe", "ignore"] });
      let out = "";
      cli.stdout.on("data", (chunk) => {
        out += String(chunk);
      });
      cli.once("exit", () => resolve(out));
    });
    const lo = readFileSync("/proc/net/dev", "utf8")
      .split("\n")
      .find((line) => line.trim().startsWith("lo:"));
    return {
      commits: Number(rows[0]?.commits ?? 0),
      rows: Number(rows[0]?.rows ?? 0),
      walBytes: Number(rows[0]?.wal ?? 0),
      redisCommands: Number(/total_commands_processed:(\d+)/.exec(redisInfo)?.[1] ?? 0),
      loopbackBytes: Number(lo?.split(":")[1]?.trim().split(/\s+/)[0] ?? 0),
    };
  };
  const costPhase = async () => {
    await new Promise((resolve) => setTimeout(resolve, 12_000)); // the tails of the phase before
    const idle = await idleRates();
    const before = await counters();
    const meters = [cpuMeter(() => [run.pid]), cpuMeter(() => [temporalPid]), cpuMeter(postgres)];
    const startedAt = Date.now();
    const sent = await load(run.url, run.key, costMessages, 8, costRate);
    const ids = sent.sent.flatMap((one) => (one.id === undefined ? [] : [one.id]));
    const delivered = await run.deliveredTimes(ids, 120_000);
    const ms = Date.now() - startedAt;
    const [server = 0, engine = 0, database = 0] = meters.map((meter, i) => meter() - (idle[i] ?? 0) * ms);
    const after = await counters();
    const n = Math.max(1, delivered.size);
    return {
      delivered: delivered.size,
      server: server / n,
      temporal: engine / n,
      postgres: database / n,
      commits: (after.commits - before.commits) / n,
      rows: (after.rows - before.rows) / n,
      walKiB: (after.walBytes - before.walBytes) / 1024 / n,
      redisCommands: (after.redisCommands - before.redisCommands) / n,
      loopbackKiB: (after.loopbackBytes - before.loopbackBytes) / 1024 / n,
    };
  };
  const noCost = {
    delivered: 0,
    server: 0,
    temporal: 0,
    postgres: 0,
    commits: 0,
    rows: 0,
    walKiB: 0,
    redisCommands: 0,
    loopbackKiB: 0,
  };
  const instantCost = withoutCost ? noCost : await costPhase();
  run.behave({ sendLatencyMs: 1000, sendLatencyMaxMs: 3000, deliveredAfterMs: [2000, 10_000] });
  const realisticCost = withoutCost ? noCost : await costPhase();
  // The same with two webhook events subscribed (each message's sms_sent and sms_delivered posted
  // to a receiver that answers at once): what a customer's webhooks add to a message's cost.
  const hooks = withoutCost ? undefined : await run.webhooks(["sms_sent", "sms_delivered"]);
  const hookedCost = hooks === undefined ? noCost : await costPhase();
  const hookDeliveries = hooks?.received() ?? 0;
  await hooks?.stop();
  run.behave({ sendLatencyMs: 0, sendLatencyMaxMs: 0, deliveredAfterMs: undefined });
  // A steady load through phones running the SMSGate app, on the same server, all of one account.
  const smsGateCount =
    only === "overload" || only === "burst" || only === "cost" ? 0 : Math.round(steadySeconds * smsGateRate);
  const account = await run.smsGateAccount();
  const fetchedAt = await run.smsGatePhones(gatewayCount, account.credentials);
  const viaApp = await load(run.url, run.key, smsGateCount, 8, smsGateRate);
  const viaAppDelivered = await run.deliveredTimes(
    viaApp.sent.flatMap((s) => (s.id === undefined ? [] : [s.id])),
    60_000,
  );
  const viaAppFetched = latencies(viaApp.sent, fetchedAt);
  const viaAppEnd = latencies(viaApp.sent, viaAppDelivered);
  // And through SMSGate's third-party API, sent by SMSGate's own client library, to the same phones.
  const viaApi = await load(run.url, account.credentials, smsGateCount, 8, smsGateRate, { LOAD_DIALECT: "smsgate" });
  const ownIds = await account.idsOf(viaApi.sent.flatMap((s) => (s.id === undefined ? [] : [s.id])));
  const viaApiSent = viaApi.sent.map((s) => ({ ...s, id: s.id === undefined ? undefined : ownIds.get(s.id) }));
  const viaApiDelivered = await run.deliveredTimes(
    viaApiSent.flatMap((s) => (s.id === undefined ? [] : [s.id])),
    60_000,
  );
  const viaApiAccept = viaApiSent.map((s) => s.acceptedAt - s.sentAt);
  const viaAppAccept = viaApp.sent.map((s) => s.acceptedAt - s.sentAt);
  await run.stop();

  // 4. Back-pressure: a small backlog limit, a send rate above the drain.
  const over = await smsgwRun(
    temporal.address,
    { BACKLOG_MAX_TOTAL: String(overloadBacklog), BACKLOG_MAX_PER_KEY: String(overloadBacklog) },
    db,
  );
  const overload = await load(
    over.url,
    over.key,
    only === "burst" || only === "smsgate" || only === "cost" ? 0 : overloadRate * overloadSeconds,
    64,
    overloadRate,
  );
  const overAccepted = overload.sent.filter((s) => s.status === 202);
  const refused = overload.sent.filter((s) => s.status === 503);
  const refusalsWellFormed = refused.every((s) => typeof s.error === "string" && Number(s.retryAfter) > 0);
  const overIds = overAccepted.flatMap((s) => (s.id === undefined ? [] : [s.id]));
  const overDelivered = await over.deliveredTimes(overIds, 300_000);
  const overEnd = latencies(overAccepted, overDelivered);
  const overDevice = latencies(overAccepted, over.deviceAt);
  await over.stop();

  await db.end();
  await temporal.stop();

  const ratio = (a: number, b: number) => (a / b).toFixed(2);
  const lines = [
    `bench:send — ${new Date().toISOString()}`,
    `conditions: ${machine()}; PostgreSQL 15 and Redis 7 on localhost; Temporal dev server (file-backed SQLite, journal_mode=wal, synchronous=normal: npm start's settings), a fresh one for the floor and another for smsgw; smsgw as npm start runs it (scripts/start.sh: \`smsgw serve\` from the build in dist/, API + worker, one process, heaps capped); ${gatewayCount} simulated phones reporting at once (gRPC stream, in the bench process); REST load from a second process (${concurrency} clients for the burst; rates from its first request to its last answer)`,
    `floor (lean message workflow, no project code): ${Number(floor.perSecond).toFixed(1)} workflows/s, ${floorCpuPer.toFixed(1)} ms CPU per workflow (${floorSplit})`,
    `floor latency (idle, one at a time, eager start): start call p50 ${Number(floorLatency.startP50).toFixed(1)} ms / p99 ${Number(floorLatency.startP99).toFixed(1)} ms; start -> first local activity p50 ${Number(floorLatency.activityP50).toFixed(1)} ms / p99 ${Number(floorLatency.activityP99).toFixed(1)} ms`,
    `bare endpoint (one INSERT, pool of 10):        ${bareRate.toFixed(0)} sends/s accepted, p99 ${p(bareAccept, 99).toFixed(1)} ms`,
    `burst of ${burstMessages}: accepted ${accepted.length} at ${acceptRate.toFixed(0)} sends/s (${ratio(acceptRate, bareRate)}× bare), ${latencyLine("accept (HTTP 202)", acceptLatency)}`,
    `  server CPU while the burst was sent: ${(acceptingCpuMs / Math.max(1, accepted.length)).toFixed(2)} ms per accepted send (the starter's work in that time included)`,
    `burst drained: ${burstDelivered.size} delivered in ${drainSeconds.toFixed(1)} s = ${drainRate.toFixed(1)} msg/s (${ratio(drainRate, floor.perSecond)}× floor)`,
    `  ${latencyLine("acknowledgement → its receipt (recorded, durable)", burstAcks)}`,
    `  acknowledgement read → durable (server, smsgw_device_ack_record_seconds): ${(ackDurable.within(0.05) * 100).toFixed(2)} % within 50 ms, ${(ackDurable.within(0.01) * 100).toFixed(1)} % within 10 ms, p99 ≤ ${ackDurable.bound(99) * 1000} ms (n=${ackDurable.count})`,
    `  commands per phone (${spread.length} equally loaded, send cap raised): min ${Math.min(...spread)}, max ${Math.max(...spread)} (a fair share is ${Math.round(burstDelivered.size / Math.max(1, spread.length))})`,
    `CPU per delivered message: ${cpuPer.toFixed(1)} ms (server ${(cpuMs.server / burstDelivered.size).toFixed(1)}, Temporal ${(cpuMs.temporal / burstDelivered.size).toFixed(1)}, PostgreSQL ${(cpuMs.postgres / burstDelivered.size).toFixed(1)}; floor ${floorCpuPer.toFixed(1)} without PostgreSQL)`,
    `peak RSS under the burst: server ${peaks.server?.total} MiB, Temporal dev server ${peaks.temporal?.total} MiB (of which pages of their binaries and libraries: ${peaks.server?.file} and ${peaks.temporal?.file} MiB)`,
    `steady 2 msg/s for ${steadySeconds} s, from ${settleMs / 1000} s after the burst drained:`,
    `  ${latencyLine("accept -> device", steadyDevice)}`,
    `  ${latencyLine("accept -> delivered", steadyEnd)}`,
    `  ${slowest}`,
    `the cost of a message, ${costMessages} at ${costRate}/s through the same ${gatewayCount} stream phones (each part's CPU less its idle CPU, per delivered message):`,
    ...(
      [
        ["phones answering at once", instantCost],
        ["phones answering as real ones (sent 1–3 s, delivered 2–10 s later)", realisticCost],
        [
          `the same, two webhook events subscribed (sms_sent, sms_delivered; ${hookDeliveries} deliveries received)`,
          hookedCost,
        ],
      ] as const
    ).map(
      ([label, cost]) =>
        `  ${label}: ${(cost.server + cost.temporal + cost.postgres).toFixed(1)} ms CPU (server ${cost.server.toFixed(1)}, Temporal ${cost.temporal.toFixed(1)}, PostgreSQL ${cost.postgres.toFixed(1)}; the floor's workflow ${floorCpuPer.toFixed(1)}); PostgreSQL ${cost.commits.toFixed(1)} commits, ${cost.rows.toFixed(1)} rows written, ${cost.walKiB.toFixed(1)} KiB of WAL; Redis ${cost.redisCommands.toFixed(1)} commands; ${cost.loopbackKiB.toFixed(1)} KiB over loopback (all parts, both ways); ${cost.delivered} delivered`,
    ),
    `steady ${smsGateRate} msg/s for ${steadySeconds} s through ${gatewayCount} phones speaking the SMSGate app's protocol, joined to one SMSGate account (events stream, then GET /message; the stream phones inactive), sent through smsgw's REST:`,
    `  ${latencyLine("accept -> GET /message has it", viaAppFetched)}`,
    `  ${latencyLine("accept -> delivered", viaAppEnd)}`,
    `  ${latencyLine("accept (HTTP 202, smsgw REST)", viaAppAccept)}`,
    `the same through SMSGate's third-party API (npm android-sms-gateway 3.0.0, Basic, POST /3rdparty/v1/message), to the same phones:`,
    `  ${latencyLine("accept (HTTP 202)", viaApiAccept)}`,
    `  ${latencyLine("accept -> GET /message has it", latencies(viaApiSent, fetchedAt))}`,
    `  ${latencyLine("accept -> delivered", latencies(viaApiSent, viaApiDelivered))}`,
    `overload ${overloadRate} msg/s for ${overloadSeconds} s, backlog limit ${overloadBacklog}: ${overAccepted.length} accepted, ${refused.length} refused with 503 (${refusalsWellFormed ? 'each with Retry-After and {"error"}' : 'SOME WITHOUT Retry-After or {"error"}'})`,
    `  ${latencyLine("accept -> device", overDevice)}`,
    `  ${latencyLine("accept -> delivered", overEnd)}`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  process.exit(0);
}

await main();
