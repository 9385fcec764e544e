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
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Connection } from "@temporalio/client";
import { msToTs } from "@temporalio/common/lib/time.js";
import pg from "pg";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const stateDir = join(root, ".data", "cluster");
const stateFile = join(stateDir, "state.json");
const temporalVersion = "v1.29.1";
const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "smsgw", "bin");

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

/** The four services of Temporal's server, each its own process, and the ports each listens on. */
const services = ["frontend", "history", "matching", "worker"] as const;
type Service = (typeof services)[number];
function portsOf(service: Service): { grpc: number; membership: number } {
  const offset = services.indexOf(service);
  return { grpc: settings.temporalPort + offset, membership: settings.temporalPort - 400 + offset };
}

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

/** Temporal's server configuration: its own databases, SQL visibility, the shard count, no dev-only setting. */
function temporalConfig(): string {
  const sql = (database: string, maxConns: number) => `      sql:
        pluginName: "postgres12"
        databaseName: "${database}"
        connectAddr: "${settings.postgres.hostname}:${settings.postgres.port || 5432}"
        connectProtocol: "tcp"
        user: "${decodeURIComponent(settings.postgres.username || "postgres")}"
        password: "${decodeURIComponent(settings.postgres.password)}"
        maxConns: ${maxConns}
        maxIdleConns: ${maxConns}
        maxConnLifetime: "1h"`;
  const service = (name: Service) => `  ${name}:
    rpc:
      grpcPort: ${portsOf(name).grpc}
      membershipPort: ${portsOf(name).membership}
      bindOnLocalHost: true${name === "frontend" ? `\n      httpPort: ${settings.temporalPort + 10}` : ""}`;
  return `# Written by npm run cluster (scripts/cluster.ts); rewritten on every start.
log:
  stdout: true
  level: warn
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: ${settings.shards}
  datastores:
    default:
${sql(databases.temporal, 20)}
    visibility:
${sql(databases.visibility, 10)}
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
  metrics:
    prometheus:
      framework: "tally"
      timerType: "histogram"
      listenAddress: "127.0.0.1:${settings.temporalPort + 11}"
services:
${services.map(service).join("\n")}
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: "active"
  currentClusterName: "active"
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: "frontend"
      rpcAddress: "127.0.0.1:${settings.temporalPort}"
dcRedirectionPolicy:
  policy: "noop"
dynamicConfigClient:
  filepath: "${join(stateDir, "dynamicconfig.yaml")}"
  pollInterval: "10s"
`;
}

/** The dynamic configuration: empty on purpose (Temporal's defaults, as a production server has them). */
const dynamicConfig = `# Temporal's dynamic configuration for npm run cluster: empty, so that the server runs with its
# production defaults. The dev server raises persistence and visibility rate limits and forces a
# search attribute cache refresh on every read; none of that is set here.
`;

async function ensureDatabase(name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: databaseUrl("postgres") });
  await client.connect();
  try {
    const { rowCount } = await client.query("select 1 from pg_database where datname = $1", [name]);
    if (rowCount !== 0) return false;
    await client.query(`create database "${name}"`);
    return true;
  } finally {
    await client.end();
  }
}

/** Temporal's schemas, set up in new databases and brought up to date in old ones (embedded in the SQL tool). */
async function temporalSchemas(): Promise<void> {
  const tool = join(cache, `temporal-sql-tool-${temporalVersion}`);
  const connection = [
    "--plugin",
    "postgres12",
    "--endpoint",
    settings.postgres.hostname,
    "--port",
    settings.postgres.port || "5432",
    "--user",
    decodeURIComponent(settings.postgres.username || "postgres"),
    ...(settings.postgres.password === "" ? [] : ["--password", decodeURIComponent(settings.postgres.password)]),
  ];
  for (const [database, schema] of [
    [databases.temporal, "postgresql/v12/temporal"],
    [databases.visibility, "postgresql/v12/visibility"],
  ] as const) {
    if (await ensureDatabase(database)) {
      execFileSync(tool, [...connection, "--database", database, "setup-schema", "-v", "0.0"], { stdio: "ignore" });
      log(`created ${database}`);
    }
    execFileSync(tool, [...connection, "--database", database, "update-schema", "--schema-name", schema], {
      stdio: "ignore",
    });
  }
}

function start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv): Started {
  const logFile = join(stateDir, `${name}.log`);
  const out = openSync(logFile, "a");
  const child = spawn(command, args, { cwd: root, env, stdio: ["ignore", out, out], detached: true });
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name} did not start`);
  return { name, pid, startTicks: startTicks(pid) ?? "", log: logFile };
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

/** Registers the namespace smsgw uses, when missing (a real server has none until one is made). */
async function ensureNamespace(address: string): Promise<void> {
  const connection = await Connection.connect({ address, connectTimeout: 2000 });
  try {
    const namespaces = await connection.workflowService.listNamespaces({});
    if (namespaces.namespaces.some((entry) => entry.namespaceInfo?.name === "default")) return;
    await connection.workflowService.registerNamespace({
      namespace: "default",
      workflowExecutionRetentionPeriod: msToTs("3 days"),
    });
    log("registered the namespace default (retention 3 days)");
  } finally {
    await connection.close();
  }
}

async function up(): Promise<void> {
  const running = readState();
  if (running !== undefined && running.processes.some(alive)) {
    printWhere(running);
    log("already running (npm run cluster -- down stops it)");
    return;
  }
  execFileSync("sh", [join(root, "scripts", "setup-temporal-server.sh")], { stdio: "inherit" });
  execFileSync(process.execPath, [join(root, "scripts", "build-server.mjs")], { stdio: "inherit" });
  mkdirSync(stateDir, { recursive: true });
  const earlier = readState();
  if (earlier !== undefined && earlier.shards !== settings.shards)
    throw new Error(
      `Temporal's databases hold ${earlier.shards} history shards, and a shard count cannot change: ` +
        `npm run cluster -- down --purge drops them (and every workflow), or set CLUSTER_SHARDS=${earlier.shards}`,
    );
  await temporalSchemas();
  // Temporal 1.29 reads <root>/<config>/<env>.yaml (its --config-file flag is newer).
  writeFileSync(join(stateDir, "cluster.yaml"), temporalConfig());
  writeFileSync(join(stateDir, "dynamicconfig.yaml"), dynamicConfig);
  const server = join(cache, `temporal-server-${temporalVersion}`);
  const state: State = {
    shards: settings.shards,
    processes: [],
    temporalAddress: `127.0.0.1:${settings.temporalPort}`,
    smsgw: [],
    secretKeyBase: earlier?.secretKeyBase ?? randomBytes(48).toString("hex"),
  };
  // Written as each process starts, so that `down` finds whatever started even if `up` fails midway.
  for (const service of services) {
    state.processes.push(
      start(
        `temporal-${service}`,
        server,
        ["--root", stateDir, "--config", ".", "--env", "cluster", "--allow-no-auth", "start", "--service", service],
        { ...process.env, GOMEMLIMIT: process.env.GOMEMLIMIT ?? "512MiB" },
      ),
    );
    writeState(state);
  }
  await until(
    "Temporal's frontend",
    async () => {
      await ensureNamespace(state.temporalAddress);
      return true;
    },
    120_000,
    state.processes,
  );
  log(`Temporal ${temporalVersion} answers at ${state.temporalAddress} (${settings.shards} history shards)`);
  await ensureDatabase(databases.smsgw);
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
    ...services.map(
      (service) =>
        `  ${service.padEnd(9)} pid ${state.processes.find((p) => p.name === `temporal-${service}`)?.pid ?? "-"}  gRPC 127.0.0.1:${portsOf(service).grpc}`,
    ),
    `  metrics   http://127.0.0.1:${settings.temporalPort + 11}/metrics`,
    ...state.smsgw.map(
      (url, i) =>
        `smsgw ${i + 1}          ${url}  pid ${state.processes.find((p) => p.name === `smsgw-${i + 1}`)?.pid}`,
    ),
    `  database  ${databaseUrl(databases.smsgw)}`,
    `  redis     ${settings.redisUrl}`,
    `logs        ${stateDir}/*.log`,
    "first key   DATABASE_URL=" + `${databaseUrl(databases.smsgw)} npx smsgw keys create --kind admin --name ops`,
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
