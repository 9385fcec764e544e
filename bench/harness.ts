// What the benchmarks share: a real server against local services, percentiles, and the conditions.
import { readdirSync, readFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { pino } from "pino";
import { loadConfig } from "../src/config.js";
import { ensureDatabase } from "../src/db/orm.js";
import { type Running, type ServeOptions, serve } from "../src/serve.js";
import { devServerSetup, ensureLocalTemporal } from "../src/temporal/dev-server.js";

const databaseUrl = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/smsgw_bench";

/**
 * Starts smsgw on an ephemeral port against the bench database, Redis and Temporal (TEMPORAL_ADDRESS,
 * or an in-memory dev server of its own), with `env` over the defaults. `stop` ends it all.
 */
export async function benchServer(
  env: Record<string, string>,
  options: ServeOptions,
): Promise<Running & { url: string; stopAll(): Promise<void> }> {
  const logger = pino({ level: "warn" });
  const temporal = process.env.TEMPORAL_ADDRESS
    ? { address: process.env.TEMPORAL_ADDRESS, stop: async () => undefined }
    : await ensureLocalTemporal({
        ...devServerSetup(loadConfig()),
        port: 7277,
        uiPort: undefined,
        dataDir: undefined,
        namespace: "default",
        logger,
      });
  await ensureDatabase(databaseUrl);
  const config = loadConfig({
    ...process.env,
    HOST: "127.0.0.1",
    PORT: "0",
    DATABASE_URL: databaseUrl,
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_TASK_QUEUE: `bench-${Date.now()}`,
    LOG_LEVEL: "warn",
    RATE_LIMIT_REQUESTS: "1000000",
    ...env,
  });
  const server = await serve(config, logger, options);
  return {
    ...server,
    url: server.url ?? "",
    async stopAll() {
      await server.stop();
      await temporal.stop();
    },
  };
}

/** The `p`th percentile of sorted values. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** One line of p50, p99 and max latency. */
export function latencyLine(name: string, values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const ms = (value: number) => `${value.toFixed(1).padStart(8)} ms`;
  return `${name.padEnd(28)} p50 ${ms(percentile(sorted, 50))}   p99 ${ms(percentile(sorted, 99))}   max ${ms(sorted.at(-1) ?? Number.NaN)}   (n=${sorted.length})`;
}

/** The machine a benchmark ran on. */
export function machine(): string {
  return `Node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB`;
}

/** Samples this process's resident memory; `stop` returns the peak in MiB. */
export function rssSampler(): { stop(): number } {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 100);
  return {
    stop() {
      clearInterval(timer);
      return Math.round(peak / 2 ** 20);
    },
  };
}

/** CPU time (user + system, ms) a process has used so far, from /proc; 0 once it is gone. */
export function processCpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command name; in clock ticks (100/s).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

/**
 * Resident memory of a process in MiB, from /proc: all of it, and the part that is pages of files
 * (its binary and libraries) rather than memory of its own.
 */
export function processRss(pid: number): { total: number; file: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kB = (name: string) => Number(status.match(new RegExp(`${name}:\\s+(\\d+) kB`))?.[1] ?? 0);
    return { total: Math.round(kB("VmRSS") / 1024), file: Math.round(kB("RssFile") / 1024) };
  } catch {
    return { total: 0, file: 0 };
  }
}

/** The processes whose command name is `name` (PostgreSQL's server and backends, say). */
export function pidsNamed(name: string): number[] {
  return readdirSync("/proc").flatMap((entry) => {
    if (!/^\d+$/.test(entry)) return [];
    try {
      return readFileSync(`/proc/${entry}/comm`, "utf8").trim() === name ? [Number(entry)] : [];
    } catch {
      return [];
    }
  });
}

/** Samples the peak resident memory of processes; `stop` returns each one's peak in MiB (and its file-backed part then). */
export function peakRss(pids: Record<string, number>): { stop(): Record<string, { total: number; file: number }> } {
  const peaks: Record<string, { total: number; file: number }> = Object.fromEntries(
    Object.keys(pids).map((name) => [name, { total: 0, file: 0 }]),
  );
  const sample = () => {
    for (const [name, pid] of Object.entries(pids)) {
      const now = processRss(pid);
      if (now.total > (peaks[name]?.total ?? 0)) peaks[name] = now;
    }
  };
  sample();
  const timer = setInterval(sample, 100);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return peaks;
    },
  };
}

/**
 * A Prometheus histogram read from a `/metrics` text: the share of observations at or under each
 * bucket bound, and the smallest bound that holds `p` percent of them (a quantile, to the bucket).
 */
export function histogramOf(
  text: string,
  name: string,
): { count: number; within(le: number): number; bound(p: number): number } {
  const buckets = [...text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\d+(?:\\.\\d+)?)$`, "gm"))].map(
    (match) => ({ le: match[1] === "+Inf" ? Number.POSITIVE_INFINITY : Number(match[1]), count: Number(match[2]) }),
  );
  const count = buckets.at(-1)?.count ?? 0;
  return {
    count,
    within: (le) => (count === 0 ? Number.NaN : (buckets.find((bucket) => bucket.le === le)?.count ?? 0) / count),
    bound: (p) => buckets.find((bucket) => bucket.count >= (p / 100) * count)?.le ?? Number.NaN,
  };
}

/** Runs a benchmark's `main`: exits 0 when it is done, 1 with its error's stack when it fails. */
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}
