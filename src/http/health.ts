import type { MikroORM } from "@mikro-orm/postgresql";
import type { Client } from "@temporalio/client";
import type { Redis } from "ioredis";
import { databaseAnswers } from "../db/orm.js";

type CheckName = "database" | "redis" | "temporal";

/** The outcome of the health check: `ok`, or which dependency does not answer. */
export interface Health {
  readonly healthy: boolean;
  readonly checks: Record<CheckName, "ok" | "down">;
}

function within<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Asks PostgreSQL, Redis and Temporal whether they answer, in parallel, each within `timeoutMs`. */
export async function checkHealth(
  deps: { orm: MikroORM; redis: Pick<Redis, "ping">; temporal: Pick<Client, "workflowService"> },
  timeoutMs = 2000,
): Promise<Health> {
  const probes: Record<CheckName, () => Promise<unknown>> = {
    database: () => databaseAnswers(deps.orm),
    redis: () => deps.redis.ping(),
    temporal: () => deps.temporal.workflowService.getSystemInfo({}),
  };
  const names = Object.keys(probes) as CheckName[];
  const results = await Promise.allSettled(names.map((name) => within(probes[name](), timeoutMs)));
  const checks = Object.fromEntries(
    names.map((name, i) => [name, results[i]?.status === "fulfilled" ? "ok" : "down"]),
  ) as Record<CheckName, "ok" | "down">;
  return { healthy: Object.values(checks).every((state) => state === "ok"), checks };
}
