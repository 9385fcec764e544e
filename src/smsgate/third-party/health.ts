import type { FastifyInstance, FastifyReply } from "fastify";
import type { ApiContext } from "./context.js";

// Health (`handlers/health.go`): `/health` (readiness) and `/health/{live,ready,startup}`, with no
// credential, under the API and at the root, as `{status, version, releaseId, checks}`; 503 on fail.

type Probe = "live" | "ready" | "startup";

/** The routes of health, on `app` (an API scope, or the root). */
export function healthRoutes(app: FastifyInstance, context: ApiContext): void {
  const { deps } = context;

  const answer = async (probe: Probe, reply: FastifyReply) => {
    // Alive is alive: the process answers. Ready (and started) while sends can be taken: they need
    // PostgreSQL only; Redis and Temporal down only delay them.
    if (probe === "live") {
      return reply.send({ status: "pass", version: deps.version, releaseId: 0, checks: {} });
    }
    const { checks } = await deps.health();
    const check = (name: string, state: "ok" | "down", required: boolean) => [
      name,
      { description: `whether ${name} answers`, status: state === "ok" ? "pass" : required ? "fail" : "warn" },
    ];
    const status =
      checks.database === "down" ? "fail" : checks.redis === "down" || checks.temporal === "down" ? "warn" : "pass";
    return reply.code(status === "fail" ? 503 : 200).send({
      status,
      version: deps.version,
      releaseId: 0,
      checks: Object.fromEntries([
        check("database", checks.database, true),
        check("redis", checks.redis, false),
        check("temporal", checks.temporal, false),
      ]),
    });
  };

  app.get("/health", (_request, reply) => answer("ready", reply));
  for (const probe of ["live", "ready", "startup"] as const)
    app.get(`/health/${probe}`, (_request, reply) => answer(probe, reply));
}
