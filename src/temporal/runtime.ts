import { DefaultLogger, type LogLevel, Runtime } from "@temporalio/worker";
import type { Logger } from "pino";

let installed = false;

/**
 * Installs the Temporal runtime once per process: its logs go to pino (warnings and up), and it
 * leaves SIGINT/SIGTERM to `smsgw serve`, which drains the API before stopping the workers.
 */
export function installTemporalRuntime(logger: Logger): void {
  if (installed) return;
  installed = true;
  const levels: Record<LogLevel, "trace" | "debug" | "info" | "warn" | "error"> = {
    TRACE: "trace",
    DEBUG: "debug",
    INFO: "info",
    WARN: "warn",
    ERROR: "error",
  };
  Runtime.install({
    shutdownSignals: [],
    logger: new DefaultLogger("WARN", (entry) => {
      // Expected for the per-instance device worker, which runs activities only.
      if (entry.message.startsWith("No workflows registered")) return;
      logger[levels[entry.level]]({ temporal: entry.meta }, entry.message);
    }),
  });
}
