// npm run bench:floor: Temporal's own floor on its real server beside the dev server's, in one run.
//
// The floor is bench/floor: the lean message workflow (two activities and a signal-free wait, no
// project code), BENCH_FLOOR_RUNS times (1,000), 64 at a time, worker and client in one process. It
// runs against (1) a fresh in-memory dev server as `npm start` would start one, and (2) Temporal's own
// server 1.29.1 as `npm run cluster` runs it (four services as four processes, BENCH_FLOOR_SHARDS
// history shards (4), PostgreSQL persistence and SQL visibility, production defaults) on databases of
// its own. It prints workflows per second and CPU per workflow in each part (the engine, its
// PostgreSQL, the Node worker), and their ratios.
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Connection } from "@temporalio/client";
import pg from "pg";
import { pino } from "pino";
import {
  ensureNamespace,
  ensureTemporalServerBuilt,
  prepareTemporalServer,
  startTemporalService,
  type TemporalServerSetup,
  temporalServices,
} from "../scripts/temporal-server.js";
import { loadConfig } from "../src/config.js";
import { devServerSetup, ensureLocalTemporal } from "../src/temporal/dev-server.js";
import { ensureSearchAttributes, untilSearchAttributesUsable } from "../src/temporal/search-attributes.js";
import { machine, pidsNamed, processCpuMs, runBench } from "./harness.js";

const runs = Number(process.env.BENCH_FLOOR_RUNS ?? 1000);
const shards = Number(process.env.BENCH_FLOOR_SHARDS ?? 4);
const root = fileURLToPath(new URL("..", import.meta.url));
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Floor {
  perSecond: number;
  nodeCpuMs: number;
  total: number;
}

/** Runs bench/floor/run.ts against `address`; returns its figures. */
async function floorAt(address: string): Promise<Floor> {
  // The floor's workflow sets SmsStatus, as smsgw's do: registered, and usable, first.
  const connection = await Connection.connect({ address });
  try {
    await ensureSearchAttributes(connection, "default");
    await untilSearchAttributesUsable(connection, "default");
  } finally {
    await connection.close();
  }
  const child = spawn(process.execPath, ["--import", "tsx", "bench/floor/run.ts", address, String(runs), "64"], {
    cwd: root,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines: string[] = [];
  createInterface({ input: child.stdout }).on("line", (line) => lines.push(line));
  const code = await new Promise((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`the floor exited with ${String(code)}`);
  return JSON.parse(lines.at(-1) ?? "{}") as Floor;
}

/** CPU of `pids()` (read at each end: PostgreSQL's backends come and go) over `work`. */
async function measured<T>(pids: () => number[], work: () => Promise<T>): Promise<{ result: T; cpuMs: number }> {
  const read = () => pids().reduce((sum, pid) => sum + processCpuMs(pid), 0);
  const before = read();
  const result = await work();
  return { result, cpuMs: read() - before };
}

async function main(): Promise<void> {
  // 1. The dev server.
  const dev = await ensureLocalTemporal({
    ...devServerSetup(loadConfig()),
    port: 7298,
    uiPort: undefined,
    dataDir: undefined,
    namespace: "default",
    logger: pino({ level: "warn" }),
  });
  await floorAt(dev.address); // warm-up: the worker's bundle, the server's caches
  const devEngine = await measured(
    () => (dev.pid === undefined ? [] : [dev.pid]),
    () => floorAt(dev.address),
  );
  await dev.stop();

  // 2. Temporal's own server, on databases of its own on the local PostgreSQL.
  ensureTemporalServerBuilt();
  const admin = new pg.Client({ connectionString: "postgresql://postgres@127.0.0.1:5432/postgres" });
  await admin.connect();
  for (const name of ["smsgw_floor_temporal", "smsgw_floor_temporal_visibility"])
    await admin.query(`drop database if exists "${name}" with (force)`);
  await admin.end();
  const setup: TemporalServerSetup = {
    postgres: new URL("postgresql://postgres@127.0.0.1:5432"),
    databases: { temporal: "smsgw_floor_temporal", visibility: "smsgw_floor_temporal_visibility" },
    shards,
    port: 7433,
    dir: `${root}.data/bench-floor-temporal`,
  };
  await prepareTemporalServer(setup);
  const children: ChildProcess[] = temporalServices.map(
    (service) => startTemporalService(setup, service, { detached: false }).child,
  );
  const address = `127.0.0.1:${setup.port}`;
  try {
    for (let tries = 0; ; tries++) {
      try {
        await ensureNamespace(address);
        break;
      } catch (error) {
        if (tries > 120) throw error;
        await wait(500);
      }
    }
    await wait(3000); // the new namespace reaches every service's cache
    await floorAt(address);
    const temporalPids = () => children.flatMap((child) => (child.pid === undefined ? [] : [child.pid]));
    const postgresPids = () => pidsNamed("postgres");
    let postgresMs = 0;
    const perService = temporalServices.map((service, i) => ({ service, pid: children[i]?.pid ?? 0, ms: 0 }));
    for (const entry of perService) entry.ms = -processCpuMs(entry.pid);
    const real = await measured(temporalPids, async () => {
      const inner = await measured(postgresPids, () => floorAt(address));
      postgresMs = inner.cpuMs;
      return inner.result;
    });
    for (const entry of perService) entry.ms += processCpuMs(entry.pid);

    const per = (ms: number, floor: Floor) => (ms / floor.total).toFixed(2);
    const devFloor = devEngine.result;
    const realFloor = real.result;
    const devTotal = (devEngine.cpuMs + devFloor.nodeCpuMs) / devFloor.total;
    const realTotal = (real.cpuMs + postgresMs + realFloor.nodeCpuMs) / realFloor.total;
    const lines = [
      `bench:floor — ${new Date().toISOString()}`,
      `conditions: ${machine()}; the floor workflow ${runs} times, 64 at a time, worker and client in one Node process; PostgreSQL 15 on localhost`,
      `dev server (in memory):                    ${devFloor.perSecond.toFixed(1)} workflows/s; CPU per workflow ${devTotal.toFixed(2)} ms (engine ${per(devEngine.cpuMs, devFloor)}, Node ${per(devFloor.nodeCpuMs, devFloor)})`,
      `Temporal's server (4 services, ${shards} shards, PostgreSQL): ${realFloor.perSecond.toFixed(1)} workflows/s; CPU per workflow ${realTotal.toFixed(2)} ms (engine ${per(real.cpuMs, realFloor)}, its PostgreSQL ${per(postgresMs, realFloor)}, Node ${per(realFloor.nodeCpuMs, realFloor)})`,
      `  the engine's CPU by service: ${perService.map((entry) => `${entry.service} ${per(entry.ms, realFloor)} ms (${((entry.ms / Math.max(1, real.cpuMs)) * 100).toFixed(0)} %)`).join(", ")}`,
      `ratio (server / dev server): throughput ${(realFloor.perSecond / devFloor.perSecond).toFixed(2)}×, CPU per workflow ${(realTotal / devTotal).toFixed(2)}×`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    for (const child of children) child.kill("SIGTERM");
    await wait(2000);
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
  }
}

runBench(main);
