// npm run cluster [-- up | down [--purge] | status]: smsgw as a farm past one machine runs it, on one
// machine. Temporal's own server (built once from the Go module proxy, like the Temporal CLI) on its
// own PostgreSQL databases, with SQL visibility, CLUSTER_SHARDS history shards (4), and its four
// services (frontend, history, matching, worker) as four processes, as they scale apart; then
// CLUSTER_INSTANCES smsgw instances (2) on their own ports, sharing one PostgreSQL database and one
// Redis. It prints where everything is. `down` stops exactly the processes `up` started (their pids
// and start times are kept in .data/cluster/state.json); `--purge` also drops the databases.
//
// The same versions and settings as docker-compose.yml: temporalio/auto-setup 1.29.1, postgres12,
// SQL visibility, 4 shards. Nothing here is a dev-server setting: smsgw must work on the real thing.
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import {
  ensureNamespace,
  ensureTemporalServerBuilt,
  metricsPort,
  portsOf,
  prepareTemporalServer,
  startTemporalService,
  type TemporalServerSetup,
  temporalServices,
  temporalVersion,
} from "./temporal-server.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const stateDir = join(root, ".data", "cluster");
const stateFile = join(stateDir, "state.json");

/** What can be set from the environment, with the defaults. */
const settings = {
  /** PostgreSQL for Temporal's two databases and smsgw's (trust or password in the URL). */
  postgres: new URL(process.env.CLUSTER_POSTGRES_URL ?? "postgresql://postgres@127.0.0.1:5432"),
  redisUrl: process.env.CLUSTER_REDIS_URL ?? "redis://127.0.0.1:6379/2",
  shards: Number(process.env.CLUSTER_SHARDS ?? 4),
  instances: Number(process.env.CLUSTER_INSTANCES ?? 2),
  /** Temporal's frontend; the other services take the next ports. */
  temporalPort: Number(process.env.CLUSTER_TEMPORAL_PORT ?? 7333),
  /** The first smsgw instance; the others take the next ports. */
  smsgwPort: Number(process.env.CLUSTER_SMSGW_PORT ?? 3101),
};

const databases = {
  temporal: "smsgw_cluster_temporal",
  visibility: "smsgw_cluster_temporal_visibility",
  smsgw: "smsgw_cluster",
};

const temporal: TemporalServerSetup = {
  postgres: settings.postgres,
  databases,
  shards: settings.shards,
  port: settings.temporalPort,
  dir: stateDir,
};

interface Started {
  name: string;
  pid: number;
  /** The process's start time in /proc/PID/stat (clock ticks after boot): a pid reused since is not ours. */
  startTicks: string;
  log: string;
}

interface State {
  shards: number;
  processes: Started[];
  temporalAddress: string;
  smsgw: string[];
  secretKeyBase: string;
}

function log(line: string): void {
  process.stderr.write(`cluster: ${line}\n`);
}

/** The process's start time, or undefined when it is gone (or a zombie: exited, not yet reaped). */
function startTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[0] === "Z" ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

function alive(process: Started): boolean {
  return startTicks(process.pid) === process.startTicks;
}

function readState(): State | undefined {
  try {
    return JSON.parse(readFileSync(stateFile, "utf8")) as State;
  } catch {
    return undefined;
  }
}

function writeState(state: State): void {
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(stateFile, `${JSON.stringify(state, null, 2)}\n`);
}

function databaseUrl(name: string): string {
  const url = new URL(settings.postgres);
  url.pathname = `/${name}`;
  return url.toString();
}

function started(name: string, pid: number | undefined, log: string): Started {
  if (pid === undefined) throw new Error(`${name} did not start`);
  return { name, pid, startTicks: startTicks(pid) ?? "", log };
}

function start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv): Started {
  const logFile = join(stateDir, `${name}.log`);
  const out = openSync(logFile, "a");
  const child = spawn(command, args, { cwd: root, env, stdio: ["ignore", out, out], detached: true });
  child.unref();
  return started(name, child.pid, logFile);
}

async function until(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  watched: Started[] = [],
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const gone = watched.find((started) => !alive(started));
    if (gone !== undefined) {
      const tail = readFileSync(gone.log, "utf8").trim().split("\n").slice(-5).join("\n");
      throw new Error(`${gone.name} exited while waiting for ${what}; the end of ${gone.log}:\n${tail}`);
    }
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`${what} did not come within ${timeoutMs / 1000} s`);
}

async function up(): Promise<void> {
  const running = readState();
  if (running?.processes.some(alive)) {
    printWhere(running);
    log("already running (npm run cluster -- down stops it)");
    return;
  }
  ensureTemporalServerBuilt();
  execFileSync(process.execPath, [join(root, "scripts", "build-server.mjs")], { stdio: "inherit" });
  mkdirSync(stateDir, { recursive: true });
  const earlier = readState();
  if (earlier !== undefined && earlier.shards !== settings.shards)
    throw new Error(
      `Temporal's databases hold ${earlier.shards} history shards, and a shard count cannot change: ` +
        `npm run cluster -- down --purge drops them (and every workflow), or set CLUSTER_SHARDS=${earlier.shards}`,
    );
  for (const created of await prepareTemporalServer(temporal)) log(`created ${created}`);
  const state: State = {
    shards: settings.shards,
    processes: [],
    temporalAddress: `127.0.0.1:${settings.temporalPort}`,
    smsgw: [],
    secretKeyBase: earlier?.secretKeyBase ?? randomBytes(48).toString("hex"),
  };
  // Written as each process starts, so that `down` finds whatever started even if `up` fails midway.
  for (const service of temporalServices) {
    const { child, log: logFile } = startTemporalService(temporal, service, { detached: true });
    state.processes.push(started(`temporal-${service}`, child.pid, logFile));
    writeState(state);
  }
  await until(
    "Temporal's frontend",
    async () => {
      if (await ensureNamespace(state.temporalAddress)) log("registered the namespace default (retention 3 days)");
      return true;
    },
    120_000,
    state.processes,
  );
  log(`Temporal ${temporalVersion} answers at ${state.temporalAddress} (${settings.shards} history shards)`);
  for (let i = 0; i < settings.instances; i++) {
    const port = settings.smsgwPort + i;
    const dataDir = join(stateDir, `smsgw-${i + 1}`);
    state.processes.push(
      start(`smsgw-${i + 1}`, "sh", [join(root, "scripts", "start.sh")], {
        ...process.env,
        PORT: String(port),
        HOST: process.env.HOST ?? "127.0.0.1",
        DATABASE_URL: databaseUrl(databases.smsgw),
        REDIS_URL: settings.redisUrl,
        TEMPORAL_ADDRESS: state.temporalAddress,
        SECRET_KEY_BASE: state.secretKeyBase,
        DATA_DIR: dataDir,
        LOG_FORMAT: "json",
      }),
    );
    state.smsgw.push(`http://127.0.0.1:${port}`);
    writeState(state);
  }
  for (const url of state.smsgw) {
    await until(
      `smsgw at ${url}`,
      async () => {
        const response = await fetch(`${url}/up`);
        return response.status === 200 && ((await response.json()) as { status: string }).status === "ok";
      },
      180_000,
      state.processes,
    );
  }
  printWhere(state);
}

function printWhere(state: State): void {
  const lines = [
    `Temporal ${temporalVersion}   ${state.temporalAddress}  (${state.shards} history shards, PostgreSQL: ${databases.temporal}, ${databases.visibility})`,
    ...temporalServices.map(
      (service) =>
        `  ${service.padEnd(9)} pid ${state.processes.find((p) => p.name === `temporal-${service}`)?.pid ?? "-"}  gRPC 127.0.0.1:${portsOf(temporal, service).grpc}`,
    ),
    `  metrics   http://127.0.0.1:${metricsPort(temporal)}/metrics`,
    ...state.smsgw.map(
      (url, i) =>
        `smsgw ${i + 1}          ${url}  pid ${state.processes.find((p) => p.name === `smsgw-${i + 1}`)?.pid}`,
    ),
    `  database  ${databaseUrl(databases.smsgw)}`,
    `  redis     ${settings.redisUrl}`,
    `logs        ${stateDir}/*.log`,
    `first key   DATABASE_URL=${databaseUrl(databases.smsgw)} npx smsgw keys create --kind admin --name ops`,
    "stop        npm run cluster -- down",
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

async function down(purge: boolean): Promise<void> {
  const state = readState();
  const ours = (state?.processes ?? []).filter(alive);
  // smsgw first (it drains), then Temporal's services.
  for (const group of [
    ours.filter((p) => p.name.startsWith("smsgw")),
    ours.filter((p) => p.name.startsWith("temporal")),
  ]) {
    for (const started of group) {
      try {
        process.kill(-started.pid, "SIGTERM");
      } catch {
        process.kill(started.pid, "SIGTERM");
      }
    }
    const deadline = Date.now() + 20_000;
    while (group.some(alive) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    for (const started of group.filter(alive)) {
      log(`${started.name} (pid ${started.pid}) did not stop: killed`);
      try {
        process.kill(-started.pid, "SIGKILL");
      } catch {
        process.kill(started.pid, "SIGKILL");
      }
    }
  }
  log(ours.length === 0 ? "nothing was running" : `stopped ${ours.map((p) => `${p.name} (${p.pid})`).join(", ")}`);
  if (state !== undefined) writeState({ ...state, processes: [] });
  if (purge) {
    const client = new pg.Client({ connectionString: databaseUrl("postgres") });
    await client.connect();
    for (const name of Object.values(databases)) await client.query(`drop database if exists "${name}"`);
    await client.end();
    if (existsSync(stateDir)) rmSync(stateDir, { recursive: true, force: true });
    log(`dropped ${Object.values(databases).join(", ")} and ${stateDir}`);
  }
}

async function main(): Promise<void> {
  const [command = "up", ...rest] = process.argv.slice(2);
  if (command === "up") await up();
  else if (command === "down") await down(rest.includes("--purge"));
  else if (command === "status") {
    const state = readState();
    if (state === undefined || !state.processes.some(alive)) log("not running");
    else {
      printWhere(state);
      for (const started of state.processes)
        log(`${started.name} pid ${started.pid}: ${alive(started) ? "running" : "gone"}`);
    }
  } else {
    process.stderr.write("usage: npm run cluster [-- up | down [--purge] | status]\n");
    process.exit(2);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`cluster: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
