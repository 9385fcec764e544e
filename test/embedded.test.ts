import { type ChildProcess, execFile, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { pino } from "pino";
import { afterAll, describe, expect, inject, it } from "vitest";
import { EmbeddedPostgresError, startEmbeddedPostgres } from "../src/embedded/postgres.js";
import { freePort, untilUp } from "./helpers.js";

// The defaults of a machine with Node alone: DATABASE_URL and REDIS_URL unset, smsgw runs its own
// PostgreSQL (from npm, in DATA_DIR/pg) and Redis (in its process). Temporal is the suite's: the
// dev server the test setup found, downloaded or built is the same path `npm start` takes.

const folders: string[] = [];
afterAll(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

/** A data folder of the test's own, which PostgreSQL (run as postgres when the test is root) may enter. */
function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "smsgw-embedded-"));
  chmodSync(dir, 0o755);
  folders.push(dir);
  return dir;
}

/** The environment of `smsgw` with nothing configured but Temporal and the folder and ports. */
function bareEnv(dir: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  return {
    ...env,
    NODE_ENV: "production",
    DATA_DIR: dir,
    HOST: "127.0.0.1",
    TEMPORAL_ADDRESS: inject("temporalAddress"),
    TEMPORAL_TASK_QUEUE: `embedded-${Date.now()}`,
    LOG_LEVEL: "warn",
    ...extra,
  };
}

function smsgw(args: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return promisify(execFile)(process.execPath, ["bin/smsgw.js", ...args], { env });
}

function exited(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null
    ? Promise.resolve(child.exitCode)
    : new Promise((resolve) => child.once("exit", resolve));
}

describe("with DATABASE_URL and REDIS_URL unset", () => {
  it("serves on an embedded PostgreSQL and Redis, says so on /up, and keeps keys and messages across a Ctrl-C", async () => {
    const dir = dataDir();
    const port = await freePort();
    const env = bareEnv(dir, { PORT: String(port), EMBEDDED_POSTGRES_PORT: String(await freePort()) });
    const url = `http://127.0.0.1:${port}`;
    const start = () => spawn(process.execPath, ["bin/smsgw.js", "serve"], { env, stdio: "ignore" });
    let server = start();
    try {
      await untilUp(url, 60_000);
      const up = await (await fetch(`${url}/up`)).json();
      expect(up).toMatchObject({ status: "ok", database: "ok", redis: "ok", embedded: ["database", "redis"] });

      // A command beside the server works on the server's database.
      const key = (await smsgw(["seed"], env)).stdout.trim();
      expect(key).toMatch(/^api_live_/);
      const sent = await fetch(`${url}/api/v1/sms/send`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ to: "+14155552671", message: "kept across a restart" }),
      });
      expect(sent.status).toBe(202);
      const { message_id: messageId } = (await sent.json()) as { message_id: string };

      // Ctrl-C: the server drains, then stops the database it started; nothing of it keeps running.
      server.kill("SIGINT");
      expect(await exited(server)).toBe(0);
      expect(existsSync(join(dir, "pg", "postmaster.pid"))).toBe(false);
      expect(existsSync(join(dir, "redis.json"))).toBe(false);

      server = start();
      await untilUp(url, 60_000);
      const status = await fetch(`${url}/api/v1/sms/status/${messageId}`, {
        headers: { authorization: `Bearer ${key}` },
      });
      expect(status.status).toBe(200);
      expect(await status.json()).toMatchObject({ message_id: messageId, status: "queued" });
    } finally {
      server.kill("SIGINT");
      await exited(server);
    }
  }, 180_000);

  it("starts the embedded database for a command when no server runs, and stops it after", async () => {
    const dir = dataDir();
    const env = bareEnv(dir, { EMBEDDED_POSTGRES_PORT: String(await freePort()) });
    const { stderr } = await smsgw(["migrate"], env);
    expect(stderr).toContain("the database is up to date");
    expect(existsSync(join(dir, "pg", "PG_VERSION"))).toBe(true);
    expect(existsSync(join(dir, "pg", "postmaster.pid"))).toBe(false);
    // Made once, kept by this user alone: the database's password.
    expect(readFileSync(join(dir, "pg.password"), "utf8").trim()).toMatch(/^[\w-]{20,}$/);
  }, 60_000);
});

describe("the embedded database refuses, naming the fault and the fix", () => {
  const logger = pino({ level: "silent" });
  const options = async (dir: string) => ({
    dir: join(dir, "pg"),
    port: await freePort(),
    database: "smsgw",
    durable: false,
    logger,
  });

  it("a port in use by another program", async () => {
    const dir = dataDir();
    const taken: Server = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => taken.listen(port, "127.0.0.1", resolve));
    try {
      const refused = startEmbeddedPostgres({ ...(await options(dir)), port });
      await expect(refused).rejects.toThrow(EmbeddedPostgresError);
      await expect(refused).rejects.toThrow(
        `port ${port} of the embedded PostgreSQL (EMBEDDED_POSTGRES_PORT) is in use`,
      );
    } finally {
      taken.close();
    }
    // Nothing half-made is left running on the folder.
    expect(existsSync(join(dir, "pg", "postmaster.pid"))).toBe(false);
  }, 60_000);

  it("a lock naming a live process that is not its PostgreSQL, instead of starting a second database", async () => {
    const dir = dataDir();
    const settings = await options(dir);
    const postgres = await startEmbeddedPostgres(settings);
    await postgres.stop();
    // A crash's lock whose process number now belongs to another program (this test's own process).
    writeFileSync(join(settings.dir, "postmaster.pid"), `${process.pid}\n${settings.dir}\n0\n${settings.port}\n\n`);
    await expect(startEmbeddedPostgres(settings)).rejects.toThrow(
      `${join(settings.dir, "postmaster.pid")} names process ${process.pid}, which is not this database's PostgreSQL`,
    );
  }, 60_000);

  it("a lock left by a crash whose process is gone is not in the way: PostgreSQL recovers and serves", async () => {
    const dir = dataDir();
    const settings = await options(dir);
    await (await startEmbeddedPostgres(settings)).stop();
    const gone = spawn(process.execPath, ["-e", ""]);
    await exited(gone);
    writeFileSync(join(settings.dir, "postmaster.pid"), `${gone.pid}\n${settings.dir}\n0\n${settings.port}\n\n`);
    const postgres = await startEmbeddedPostgres(settings);
    expect(postgres.shared).toBe(false);
    await postgres.stop();
  }, 60_000);

  it("a database of another major version, with the way to bring it over", async () => {
    const dir = dataDir();
    const cluster = join(dir, "pg");
    mkdirSync(cluster, { recursive: true });
    writeFileSync(join(cluster, "PG_VERSION"), "15\n");
    writeFileSync(join(dir, "pg.password"), "old\n");
    await expect(startEmbeddedPostgres(await options(dir))).rejects.toThrow(
      `${cluster} holds a PostgreSQL 15 database, and this smsgw embeds PostgreSQL 17`,
    );
    // The command line prints that sentence alone, without a stack, and fails.
    const failed = await smsgw(["migrate"], bareEnv(dir, { EMBEDDED_POSTGRES_PORT: String(await freePort()) })).catch(
      (error: { code: number; stderr: string }) => error,
    );
    expect(failed).toMatchObject({ code: 1 });
    expect((failed as { stderr: string }).stderr).toMatch(/^smsgw: .* holds a PostgreSQL 15 database.*pg_dump/s);
    expect((failed as { stderr: string }).stderr).not.toContain("    at ");
  }, 60_000);

  it("shares the running one with a second process instead of starting another on the same folder", async () => {
    const dir = dataDir();
    const settings = await options(dir);
    const first = await startEmbeddedPostgres(settings);
    try {
      // The test's process owns it; a command run now (another process) finds and shares it.
      const { stderr } = await smsgw(["migrate"], bareEnv(dir, { EMBEDDED_POSTGRES_PORT: String(settings.port) }));
      expect(stderr).toContain("the database is up to date");
      // …and leaves it running for its owner.
      const client = new pg.Client({ connectionString: first.url.replace(/\/smsgw$/, "/postgres") });
      await client.connect();
      expect((await client.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
      await client.end();
    } finally {
      await first.stop();
    }
  }, 60_000);
});
