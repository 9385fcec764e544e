import { DefaultLogger, type LogLevel, Runtime } from "@temporalio/worker";
import type { Logger } from "pino";
import { freePort } from "../shared/ports.js";

let installed = false;
let metricsAddress: string | undefined;

/** Where the Temporal SDK serves its own Prometheus metrics (loopback only); `/metrics` includes them. */
export function temporalMetricsAddress(): string | undefined {
  return metricsAddress;
}

/**
 * Installs the Temporal runtime once per process: its logs go to pino (warnings and up), its worker
 * metrics to a Prometheus endpoint on a free loopback port (which `/metrics` includes), and it
 * leaves SIGINT/SIGTERM to `smsgw serve`, which drains the API before stopping the workers.
 */
export async function installTemporalRuntime(logger: Logger): Promise<void> {
  if (installed) return;
  installed = true;
  metricsAddress = `127.0.0.1:${await freePort()}`;
  const levels: Record<LogLevel, "trace" | "debug" | "info" | "warn" | "error"> = {
    TRACE: "trace",
    DEBUG: "debug",
    INFO: "info",
    WARN: "warn",
    ERROR: "error",
  };
  Runtime.install({
    shutdownSignals: [],
    telemetryOptions: { metrics: { prometheus: { bindAddress: metricsAddress } } },
    logger: new DefaultLogger("WARN", (entry) => {
      // Expected for the per-instance device worker, which runs activities only.
      if (entry.message.startsWith("No workflows registered")) return;
      logger[levels[entry.level]]({ temporal: entry.meta }, entry.message);
    }),
  });
}
