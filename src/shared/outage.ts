/** A dependency the server cannot do without for some requests. */
export type Dependency = "database" | "redis" | "temporal";

const networkCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "EAI_AGAIN",
]);

/** PostgreSQL's SQLSTATEs that say the server is going or gone, not that the statement is wrong. */
const databaseGone = new Set(["57P01", "57P02", "57P03", "53300"]);

const databaseMessages = [
  "Connection terminated",
  "Knex: Timeout acquiring a connection",
  "Unable to acquire a connection",
  "timeout exceeded when trying to connect",
  "Client has encountered a connection error",
  "the database system is",
];

const redisMessages = ["Connection is closed", "Stream isn't writeable", "Reached the max retries per request limit"];

function chain(error: unknown): Record<string, unknown>[] {
  const found: Record<string, unknown>[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    found.push(current as Record<string, unknown>);
    const next =
      (current as { cause?: unknown; previous?: unknown }).cause ?? (current as { previous?: unknown }).previous;
    if (next === current) break;
    current = next;
  }
  return found;
}

/**
 * Which dependency an error says did not answer, if any: a refused or broken connection to
 * PostgreSQL, Redis or Temporal, as opposed to a fault of the request or of the code. Such errors are
 * answered as outages (503 with Retry-After), not as internal errors.
 */
export function outageOf(error: unknown): Dependency | undefined {
  for (const link of chain(error)) {
    const name = typeof link.name === "string" ? link.name : "";
    const message = typeof link.message === "string" ? link.message : "";
    const code = typeof link.code === "string" || typeof link.code === "number" ? String(link.code) : "";
    if (name === "MaxRetriesPerRequestError" || redisMessages.some((text) => message.includes(text))) return "redis";
    // Temporal's client: a gRPC call that found no server (UNAVAILABLE, DEADLINE_EXCEEDED).
    if (name === "ServiceError" || name === "TransportError" || name === "ConnectionError") {
      const grpc = chain(link).map((inner) => inner.code);
      if (grpc.includes(14) || grpc.includes(4) || name !== "ServiceError") return "temporal";
    }
    if (databaseGone.has(code) || code.startsWith("08") || databaseMessages.some((text) => message.includes(text))) {
      return "database";
    }
    // A refused or broken socket that reached a handler: Redis and Temporal report theirs as above,
    // so it is PostgreSQL's pool failing to connect.
    if (networkCodes.has(code)) return "database";
  }
  return undefined;
}

const what: Record<Dependency, string> = {
  database: "The database is unavailable",
  redis: "Redis is unavailable",
  temporal: "The workflow engine is unavailable",
};

/** What the caller is told of an outage. */
export function outageMessage(dependency: Dependency): string {
  return `${what[dependency]}; try again shortly`;
}
