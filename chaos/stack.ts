// The chaos suite's own services: a PostgreSQL cluster (initdb into its own data directory, its own
// port), a Redis, a file-backed Temporal dev server and smsgw server processes, each of which the
// suite may kill, stop and start again without disturbing anything else on the machine.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { openSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import {
  ensureNamespace,
  ensureTemporalServerBuilt,
  prepareTemporalServer,
  startTemporalService,
  type TemporalServerSetup,
  type TemporalService,
  temporalServices,
  temporalVersion,
} from "../scripts/temporal-server.js";
import { loadConfig } from "../src/config.js";
import { type EmbeddedPostgres, startEmbeddedPostgres } from "../src/embedded/postgres.js";
import { redisAnswers } from "../src/embedded/redis.js";
import { freePort } from "../src/shared/ports.js";
import { devServerSetup, ensureLocalTemporal, type LocalTemporal, onPath } from "../src/temporal/dev-server.js";

/** A Redis-protocol server on `port` (js-redis-server, as src/embedded/redis.ts serves it), no password. */
function embeddedRedisProgram(port: number): string {
  return `
    import { createRedisCommandExecutor, RedisServerState, Resp2Server } from "js-redis-server/core";
    const server = new Resp2Server({ server: new RedisServerState({ databaseCount: 16 }), executor: createRedisCommandExecutor({}) });
    server.server.listen(${port}, "127.0.0.1");`;
}

export const root = fileURLToPath(new URL("..", import.meta.url));
export const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, probe: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await wait(100);
  }
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once("exit", () => resolve()));
}

/**
 * A PostgreSQL cluster of the suite's own: the embedded PostgreSQL `npm start` runs (from npm), in
 * its own data directory on its own port, stopped and started again as an operator would.
 */
export class OwnPostgres {
  private running: EmbeddedPostgres | undefined;

  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  static async create(dir: string): Promise<OwnPostgres> {
    const postgres = new OwnPostgres(dir, await freePort());
    await postgres.start();
    return postgres;
  }

  get url(): string {
    if (this.running === undefined) throw new Error("the suite's PostgreSQL has not started");
    return this.running.url;
  }

  async start(): Promise<void> {
    this.running = await startEmbeddedPostgres({
      dir: this.dir,
      port: this.port,
      database: "smsgw_chaos",
      durable: true,
      logger: pino({ level: "warn" }),
    });
  }

  /** Stops it as an operator would (fast shutdown: sessions are ended, nothing is lost). */
  async stop(): Promise<void> {
    await this.running?.stop();
  }

  async destroy(): Promise<void> {
    await this.stop();
  }
}

/** A Redis of the suite's own, keeping nothing on disk (as the machine's does). */
export class OwnRedis {
  private child: ChildProcess | undefined;

  private constructor(readonly port: number) {}

  static async create(): Promise<OwnRedis> {
    const redis = new OwnRedis(await freePort());
    await redis.start();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    // redis-server when the machine has it; else the Redis-protocol server npm start embeds, in a
    // process of its own so that it can be killed like one.
    const child = onPath("redis-server", process.env)
      ? spawn(
          "redis-server",
          ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
          {
            stdio: "ignore",
          },
        )
      : spawn(process.execPath, ["--input-type=module", "-e", embeddedRedisProgram(this.port)], {
          stdio: "ignore",
          cwd: root,
        });
    this.child = child;
    await until("Redis to answer", async () => {
      if (child.exitCode !== null) throw new Error("the suite's Redis exited");
      return redisAnswers(this.url);
    });
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    child.kill("SIGKILL");
    await exited(child);
  }
}

/** A file-backed Temporal dev server (npm start's settings), which may be killed and started again. */
export class OwnTemporal implements ChaosTemporal {
  readonly kind = "the Temporal dev server (file-backed SQLite)";
  private server: LocalTemporal | undefined;

  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  static async create(dir: string): Promise<OwnTemporal> {
    const temporal = new OwnTemporal(dir, await freePort());
    await temporal.start();
    return temporal;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = await ensureLocalTemporal({
      ...devServerSetup(loadConfig()),
      port: this.port,
      uiPort: undefined,
      dataDir: this.dir,
      namespace: "default",
      logger: pino({ level: "warn" }),
    });
  }

  /** `kill -9`: the engine stops mid-write; its SQLite file is all it keeps. */
  async kill(): Promise<void> {
    const pid = this.server?.pid;
    if (pid === undefined) return;
    process.kill(pid, "SIGKILL");
    await until("the Temporal dev server to exit", () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    });
  }

  async stop(): Promise<void> {
    await this.server?.stop();
  }

  async destroy(): Promise<void> {
    await this.stop();
  }
}

/** One `smsgw serve` process, as `npm start` runs it (scripts/start.sh), logging to a file. */
export class ServerProcess {
  private child: ChildProcess | undefined;
  constructor(
    readonly name: string,
    readonly port: number,
    private readonly env: Record<string, string>,
    private readonly logDir: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get logFile(): string {
    return join(this.logDir, `${this.name}.log`);
  }

  async start(): Promise<void> {
    const log = openSync(this.logFile, "a");
    const child = spawn("sh", ["scripts/start.sh"], {
      cwd: root,
      env: { ...process.env, ...this.env, PORT: String(this.port), HOST: "127.0.0.1" },
      stdio: ["ignore", log, log],
    });
    this.child = child;
    await until(
      `${this.name} to answer /up`,
      async () => {
        if (child.exitCode !== null) throw new Error(`${this.name} exited with ${child.exitCode}; see ${this.logFile}`);
        const status = await fetch(`${this.url}/up`).then(
          (response) => response.status,
          () => 0,
        );
        return status === 200;
      },
      90_000,
    );
  }

  /** `kill -9`: no shutdown, no drain, whatever was in flight in the process is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    child.kill("SIGKILL");
    await exited(child);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    await Promise.race([exited(child), wait(15_000)]);
    if (child.exitCode === null && child.signalCode === null) await this.kill();
  }
}

/** Runs the smsgw CLI once against the suite's services; returns its standard output. */
export function smsgwCli(args: string[], env: Record<string, string>): string {
  return execFileSync(process.execPath, ["bin/smsgw.js", ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  }).toString();
}

/** What a scenario does with its Temporal: the dev server, or Temporal's own server (`--cluster`). */
export interface ChaosTemporal {
  readonly address: string;
  /** What it is, in words, for the report. */
  readonly kind: string;
  start(): Promise<void>;
  /** `kill -9` of every process of it. */
  kill(): Promise<void>;
  stop(): Promise<void>;
  /** Stops it and removes what it kept. */
  destroy(): Promise<void>;
}

/**
 * Temporal's own server (`npm run chaos -- --cluster`): its four services as four processes, on a
 * PostgreSQL of its own (not smsgw's, so that the suite can stop it alone), 4 history shards, SQL
 * visibility, no dev-only setting: what `npm run cluster` runs.
 */
export class OwnTemporalServer implements ChaosTemporal {
  readonly kind = `Temporal's server ${temporalVersion} (4 services, 4 shards, PostgreSQL)`;
  private children = new Map<TemporalService, ChildProcess>();

  private constructor(
    private readonly setup: TemporalServerSetup,
    /** Temporal's own PostgreSQL. */
    readonly postgres: OwnPostgres,
  ) {}

  static async create(dir: string): Promise<OwnTemporalServer> {
    ensureTemporalServerBuilt();
    const postgres = await OwnPostgres.create(join(dir, "postgres"));
    // Four consecutive free ports (and their membership ports 400 below) for the four services.
    let port = 0;
    for (let tries = 0; tries < 20 && port === 0; tries++) {
      // Under 32,768: Temporal keeps its services' membership ports in a smallint column.
      const candidate = 20_000 + Math.floor(Math.random() * 12_000);
      const free = await Promise.all(
        [0, 1, 2, 3, 10, 11].flatMap((offset) => [candidate + offset, candidate - 400 + offset]).map(portIsFree),
      );
      if (free.every(Boolean)) port = candidate;
    }
    if (port === 0) throw new Error("no free ports for Temporal's services");
    const setup: TemporalServerSetup = {
      postgres: new URL(postgres.url.replace(/\/[^/]*$/, "")),
      databases: { temporal: "temporal", visibility: "temporal_visibility" },
      shards: 4,
      port,
      dir: join(dir, "temporal"),
    };
    await prepareTemporalServer(setup);
    const server = new OwnTemporalServer(setup, postgres);
    await server.start();
    return server;
  }

  get address(): string {
    return `127.0.0.1:${this.setup.port}`;
  }

  async start(): Promise<void> {
    for (const service of temporalServices) {
      this.children.set(service, startTemporalService(this.setup, service, { detached: false }).child);
    }
    await until(
      "Temporal's server to answer",
      async () => {
        for (const [service, child] of this.children)
          if (child.exitCode !== null) throw new Error(`Temporal's ${service} exited; see ${this.setup.dir}`);
        return ensureNamespace(this.address).then(
          () => true,
          () => false,
        );
      },
      120_000,
    );
  }

  async kill(): Promise<void> {
    for (const child of this.children.values()) child.kill("SIGKILL");
    await Promise.all([...this.children.values()].map(exited));
  }

  async stop(): Promise<void> {
    for (const child of this.children.values()) child.kill("SIGTERM");
    await Promise.race([Promise.all([...this.children.values()].map(exited)), wait(20_000)]);
    await this.kill();
  }

  async destroy(): Promise<void> {
    await this.stop();
    await this.postgres.destroy();
  }
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}
