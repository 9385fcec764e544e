import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync, openSync, readdirSync, statSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Connection } from "@temporalio/client";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import { tuning } from "../tuning.js";

/** A Temporal server this process may have started. */
export interface LocalTemporal {
  readonly address: string;
  /** The dev server's process, when this process started it. */
  readonly pid?: number | undefined;
  /** Stops the dev server if this process started it. */
  stop(): Promise<void>;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds the `temporal` CLI among the candidates, in order (the configuration lists `TEMPORAL_CLI`,
 * then PATH, then the cache `scripts/setup-temporal.sh` fills), or in the folder of the SDK's download.
 */
export function findTemporalCli(candidates: readonly string[], downloadDir?: string): string | undefined {
  const found = candidates.find((candidate) => candidate !== "" && executable(candidate));
  if (found !== undefined || downloadDir === undefined || !existsSync(downloadDir)) return found;
  // The SDK names its download after its own version: the newest executable in the folder is the one.
  const downloads = readdirSync(downloadDir)
    .map((name) => join(downloadDir, name))
    .filter((path) => statSync(path).isFile() && executable(path))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return downloads[0];
}

/** What an operator can do when no way of getting the CLI worked. */
const noCli =
  "The Temporal CLI (its dev server) is not on this machine and could not be downloaded or built: install it " +
  "(https://docs.temporal.io/cli, then put `temporal` on PATH or set TEMPORAL_CLI), install Go to build it " +
  "(`sh scripts/setup-temporal.sh`), or set TEMPORAL_ADDRESS to a running Temporal server.";

/** Has the TypeScript SDK download the CLI it pins into `downloadDir` (from Temporal's download site). */
async function downloadWithSdk(downloadDir: string, logger: Logger): Promise<void> {
  mkdirSync(downloadDir, { recursive: true });
  logger.info({ downloadDir }, "downloading the Temporal CLI (once)");
  const { TestWorkflowEnvironment } = await import("@temporalio/testing");
  // The SDK downloads the CLI and starts it; it is stopped at once, and smsgw starts it as it wants.
  const environment = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: "cached-download", downloadDir, ttl: "3650 days" },
      ip: "127.0.0.1",
      ui: false,
    },
  });
  await environment.teardown();
}

/** Builds the CLI with Go (`scripts/setup-temporal.sh`, which pins its version) into the cache. */
async function buildWithGo(env: Readonly<Record<string, string | undefined>>, logger: Logger): Promise<void> {
  let folder = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(folder, "scripts", "setup-temporal.sh")) && dirname(folder) !== folder)
    folder = dirname(folder);
  logger.info("building the Temporal CLI with Go (once; a few minutes)");
  const child = spawn("sh", [join(folder, "scripts", "setup-temporal.sh")], {
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...env },
  });
  const code = await new Promise<number | null>((resolve) => {
    child.once("error", () => resolve(-1));
    child.once("exit", resolve);
  });
  if (code !== 0) throw new Error(`scripts/setup-temporal.sh exited with ${code}`);
}

/** Whether `program` is an executable in one of `env.PATH`'s folders. */
export function onPath(program: string, env: Readonly<Record<string, string | undefined>>): boolean {
  return (env.PATH ?? "").split(delimiter).some((dir) => dir !== "" && executable(join(dir, program)));
}

/**
 * The `temporal` CLI: found (TEMPORAL_CLI, PATH, smsgw's cache, an earlier download), else
 * downloaded through the SDK, else built with Go; else an error that says what to install.
 */
export async function obtainTemporalCli(options: {
  cliCandidates: readonly string[];
  downloadDir: string;
  env: Readonly<Record<string, string | undefined>>;
  logger: Logger;
}): Promise<string> {
  const { cliCandidates, downloadDir, env, logger } = options;
  const found = findTemporalCli(cliCandidates, downloadDir);
  if (found !== undefined) return found;
  try {
    await downloadWithSdk(downloadDir, logger);
  } catch (error) {
    logger.warn({ err: error }, "the Temporal CLI could not be downloaded");
  }
  const downloaded = findTemporalCli([], downloadDir);
  if (downloaded !== undefined) return downloaded;
  if (onPath("go", env)) {
    await buildWithGo(env, logger);
    const built = findTemporalCli(cliCandidates);
    if (built !== undefined) return built;
  }
  throw new Error(noCli);
}

/** Where the configuration says to find (or download) the CLI, and the environment the dev server inherits. */
export function devServerSetup(config: Config): {
  cliCandidates: readonly string[];
  downloadDir: string;
  env: Config["inherited"];
} {
  return {
    cliCandidates: config.temporalDev.cliCandidates,
    downloadDir: config.temporalDev.downloadDir,
    env: config.inherited,
  };
}

/** Whether a Temporal frontend answers at `address`. */
export async function temporalAnswers(address: string): Promise<boolean> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address, connectTimeout: 1000 });
    await connection.workflowService.getSystemInfo({});
    return true;
  } catch {
    return false;
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

async function waitFor(address: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`temporal server start-dev exited with code ${child.exitCode}`);
    if (await temporalAnswers(address)) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`Temporal did not answer at ${address} within ${timeoutMs} ms`);
}

/**
 * Returns a local Temporal dev server: the one already answering on `port` (another smsgw process
 * may have started it), or a new one, with its database under `dataDir` (in memory when undefined)
 * and its Web UI on `uiPort` (none when undefined).
 */
export async function ensureLocalTemporal(options: {
  /** Where to look for the CLI, in order. */
  cliCandidates: readonly string[];
  /** Where the SDK downloads the CLI when it is nowhere. */
  downloadDir: string;
  /** The environment the dev server runs in (with its GOMEMLIMIT). */
  env: Readonly<Record<string, string | undefined>>;
  port: number;
  uiPort: number | undefined;
  dataDir: string | undefined;
  namespace: string;
  logger: Logger;
}): Promise<LocalTemporal> {
  const address = `127.0.0.1:${options.port}`;
  if (await temporalAnswers(address)) {
    options.logger.info({ address }, "using the Temporal server already running");
    return { address, stop: async () => undefined };
  }
  const cli = await obtainTemporalCli(options);
  const args = ["server", "start-dev", "--ip", "127.0.0.1", "--port", String(options.port), "--log-level", "warn"];
  args.push(...(options.uiPort === undefined ? ["--headless"] : ["--ui-port", String(options.uiPort)]));
  if (options.namespace !== "default") args.push("--namespace", options.namespace);
  let output: "ignore" | number = "ignore";
  if (options.dataDir !== undefined) {
    mkdirSync(options.dataDir, { recursive: true });
    // WAL with synchronous=normal: still durable across a crash of the process (SQLite's WAL survives
    // it), about twice the throughput of the default rollback journal on these machines.
    args.push("--db-filename", join(options.dataDir, "temporal.db"));
    args.push("--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal");
    // Fewer executions kept in memory (default 512): a message workflow lives for well under a second
    // when its phone is online, so a smaller cache costs few reloads and a good deal of memory.
    args.push("--dynamic-config-value", `history.cacheMaxSize=${tuning.devServerHistoryCacheSize.value}`);
    // One partition per task queue (default four): a single-node server gains nothing from more, and
    // with them a task waits in whichever partition no poller happens to be on, out of order.
    args.push("--dynamic-config-value", "matching.numTaskqueueReadPartitions=1");
    args.push("--dynamic-config-value", "matching.numTaskqueueWritePartitions=1");
    output = openSync(join(options.dataDir, "temporal.log"), "a");
  }
  options.logger.info({ cli, args }, "starting the Temporal dev server");
  // The dev server is a Go program: a soft memory limit (GOMEMLIMIT, in `env`; its default is
  // tuning.devServerMemoryLimit, with the measurement that chose it) makes its collector work before
  // the heap grows past what a single-machine deployment wants to give it.
  const child = spawn(cli, args, { stdio: ["ignore", output, output], env: { ...options.env } });
  await waitFor(address, child, 60_000);
  options.logger.info({ address, ui: options.uiPort && `http://127.0.0.1:${options.uiPort}` }, "Temporal is up");
  return {
    address,
    pid: child.pid,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}
