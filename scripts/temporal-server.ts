// Temporal's own server (not the dev server) as `npm run cluster` and `npm run chaos -- --cluster`
// run it: the binaries scripts/setup-temporal-server.sh builds, a configuration on PostgreSQL (its own
// two databases: persistence and SQL visibility) with a given shard count and no dev-only setting,
// its schemas, its four services as four processes, and the namespace smsgw uses.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, openSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Connection } from "@temporalio/client";
import { msToTs } from "@temporalio/common/lib/time.js";
import pg from "pg";

export const temporalVersion = "v1.29.1";
const root = resolve(fileURLToPath(new URL("..", import.meta.url)));
const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "smsgw", "bin");

/** The four services of Temporal's server, each its own process. */
export const temporalServices = ["frontend", "history", "matching", "worker"] as const;
export type TemporalService = (typeof temporalServices)[number];

/** Where one Temporal server lives: its PostgreSQL, its databases, its ports, its directory. */
export interface TemporalServerSetup {
  /** PostgreSQL's address and user (`postgresql://user[:password]@host:port`). */
  readonly postgres: URL;
  readonly databases: { readonly temporal: string; readonly visibility: string };
  readonly shards: number;
  /** The frontend's gRPC port; the other services take the next three, their membership ports 400 below. */
  readonly port: number;
  /** Where its configuration and logs go. */
  readonly dir: string;
}

/** Builds the server and its SQL tool once (about 7 minutes), cached beside the Temporal CLI. */
export function ensureTemporalServerBuilt(): void {
  execFileSync("sh", [join(root, "scripts", "setup-temporal-server.sh")], { stdio: "inherit" });
}

export function portsOf(setup: TemporalServerSetup, service: TemporalService): { grpc: number; membership: number } {
  const offset = temporalServices.indexOf(service);
  return { grpc: setup.port + offset, membership: setup.port - 400 + offset };
}

/** The server's Prometheus endpoint. */
export function metricsPort(setup: TemporalServerSetup): number {
  return setup.port + 11;
}

function databaseUrl(setup: TemporalServerSetup, name: string): string {
  const url = new URL(setup.postgres);
  url.pathname = `/${name}`;
  return url.toString();
}

/** The configuration: its own databases, SQL visibility, the shard count, nothing a dev server sets. */
function config(setup: TemporalServerSetup): string {
  const { postgres } = setup;
  const sql = (database: string, maxConns: number) => `      sql:
        pluginName: "postgres12"
        databaseName: "${database}"
        connectAddr: "${postgres.hostname}:${postgres.port || 5432}"
        connectProtocol: "tcp"
        user: "${decodeURIComponent(postgres.username || "postgres")}"
        password: "${decodeURIComponent(postgres.password)}"
        maxConns: ${maxConns}
        maxIdleConns: ${maxConns}
        maxConnLifetime: "1h"`;
  const service = (name: TemporalService) => `  ${name}:
    rpc:
      grpcPort: ${portsOf(setup, name).grpc}
      membershipPort: ${portsOf(setup, name).membership}
      bindOnLocalHost: true${name === "frontend" ? `\n      httpPort: ${setup.port + 10}` : ""}`;
  return `# Written by scripts/temporal-server.ts; rewritten on every start.
log:
  stdout: true
  level: warn
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: ${setup.shards}
  datastores:
    default:
${sql(setup.databases.temporal, 20)}
    visibility:
${sql(setup.databases.visibility, 10)}
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
  metrics:
    prometheus:
      framework: "tally"
      timerType: "histogram"
      listenAddress: "127.0.0.1:${metricsPort(setup)}"
services:
${temporalServices.map(service).join("\n")}
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
      rpcAddress: "127.0.0.1:${setup.port}"
dcRedirectionPolicy:
  policy: "noop"
dynamicConfigClient:
  filepath: "${join(setup.dir, "dynamicconfig.yaml")}"
  pollInterval: "10s"
`;
}

/** The dynamic configuration: empty on purpose (Temporal's defaults, as a production server has them). */
const dynamicConfig = `# Temporal's dynamic configuration: empty, so that the server runs with its production defaults.
# The dev server raises persistence and visibility rate limits and forces a search attribute cache
# refresh on every read; none of that is set here.
`;

async function createDatabase(setup: TemporalServerSetup, name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: databaseUrl(setup, "postgres") });
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

/**
 * Writes the configuration and sets up the schemas (in new databases; brought up to date in old
 * ones; the SQL tool carries them). Returns the databases it created.
 */
export async function prepareTemporalServer(setup: TemporalServerSetup): Promise<string[]> {
  mkdirSync(setup.dir, { recursive: true });
  // Temporal 1.29 reads <root>/<config>/<env>.yaml (its --config-file flag is newer).
  writeFileSync(join(setup.dir, "cluster.yaml"), config(setup));
  writeFileSync(join(setup.dir, "dynamicconfig.yaml"), dynamicConfig);
  const tool = join(cache, `temporal-sql-tool-${temporalVersion}`);
  const { postgres } = setup;
  const connection = [
    "--plugin",
    "postgres12",
    "--endpoint",
    postgres.hostname,
    "--port",
    postgres.port || "5432",
    "--user",
    decodeURIComponent(postgres.username || "postgres"),
    ...(postgres.password === "" ? [] : ["--password", decodeURIComponent(postgres.password)]),
  ];
  const created: string[] = [];
  for (const [database, schema] of [
    [setup.databases.temporal, "postgresql/v12/temporal"],
    [setup.databases.visibility, "postgresql/v12/visibility"],
  ] as const) {
    if (await createDatabase(setup, database)) {
      execFileSync(tool, [...connection, "--database", database, "setup-schema", "-v", "0.0"], { stdio: "ignore" });
      created.push(database);
    }
    execFileSync(tool, [...connection, "--database", database, "update-schema", "--schema-name", schema], {
      stdio: "ignore",
    });
  }
  return created;
}

/** Starts one service as its own process (detached: its own process group), logging to `<dir>/temporal-<service>.log`. */
export function startTemporalService(
  setup: TemporalServerSetup,
  service: TemporalService,
  options: { detached: boolean },
): { child: ChildProcess; log: string } {
  const log = join(setup.dir, `temporal-${service}.log`);
  const out = openSync(log, "a");
  const child = spawn(
    join(cache, `temporal-server-${temporalVersion}`),
    ["--root", setup.dir, "--config", ".", "--env", "cluster", "--allow-no-auth", "start", "--service", service],
    {
      stdio: ["ignore", out, out],
      detached: options.detached,
      env: { ...process.env, GOMEMLIMIT: process.env.GOMEMLIMIT ?? "512MiB" },
    },
  );
  if (options.detached) child.unref();
  return { child, log };
}

/** Registers the namespace smsgw uses, when missing (a real server has none until one is made). */
export async function ensureNamespace(address: string, namespace = "default"): Promise<boolean> {
  const connection = await Connection.connect({ address, connectTimeout: 2000 });
  try {
    const namespaces = await connection.workflowService.listNamespaces({});
    if (namespaces.namespaces.some((entry) => entry.namespaceInfo?.name === namespace)) return false;
    await connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs("3 days"),
    });
    return true;
  } finally {
    await connection.close();
  }
}
