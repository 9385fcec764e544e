import { type Logger, pino } from "pino";
import pinoPretty from "pino-pretty";

/**
 * The process's logger: readable lines for a person at a terminal, one JSON object a line for
 * anything else (a file, a pipe, a log collector). `format` (LOG_FORMAT) decides, `auto` by whether
 * standard output is a terminal.
 */
export function createLogger(level: string, format: "auto" | "json" | "pretty"): Logger {
  const terminal = process.stdout.isTTY === true;
  if (format === "json" || (format === "auto" && !terminal)) return pino({ level });
  return pino(
    { level },
    pinoPretty({ colorize: terminal, sync: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" }),
  );
}
