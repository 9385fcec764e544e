import { randomUUID } from "node:crypto";
import { cors as connectCors, createContextValues, createRouterTransport } from "@connectrpc/connect";
import { fastifyConnectPlugin } from "@connectrpc/connect-fastify";
import fastifyCors from "@fastify/cors";
import fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyServerFactory,
  LogController,
} from "fastify";
import type { Deps } from "./deps.js";
import { checkHealth } from "./http/health.js";
import { registerMetrics } from "./http/metrics.js";
import { peerKey, requestIdKey } from "./rpc/context.js";
import { registerRestRoutes } from "./rpc/rest-transcoder.js";
import { interceptors, routes } from "./rpc/routes.js";

/**
 * Builds the fastify app with every door (gRPC, gRPC-Web, Connect, REST), `/up`, `/metrics` and
 * CORS, without listening.
 */
export async function buildApp(
  deps: Deps,
  options: { serverFactory?: FastifyServerFactory } = {},
): Promise<FastifyInstance> {
  const { config } = deps;
  const app = fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // One line per request is too much at gateway volumes; /metrics counts them instead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    requestIdHeader: "x-request-id",
    genReqId: () => randomUUID(),
    ...(options.serverFactory === undefined ? {} : { serverFactory: options.serverFactory }),
  });

  await app.register(fastifyCors, {
    origin: config.allowedOrigins === "*" ? "*" : [...config.allowedOrigins],
    methods: [...new Set([...connectCors.allowedMethods, "GET", "POST", "OPTIONS"])],
    allowedHeaders: [...connectCors.allowedHeaders, "Authorization", "Idempotency-Key", "X-Request-Id"],
    exposedHeaders: [
      ...connectCors.exposedHeaders,
      "Retry-After",
      "RateLimit-Limit",
      "RateLimit-Remaining",
      "RateLimit-Reset",
    ],
    maxAge: 7200,
  });

  registerMetrics(app);

  app.get("/up", async (_request, reply) => {
    const health = await checkHealth(deps);
    return reply
      .code(health.healthy ? 200 : 503)
      .send({ status: health.healthy ? "ok" : "unavailable", ...health.checks });
  });

  const sharedInterceptors = interceptors(deps);
  await app.register(fastifyConnectPlugin, {
    routes: routes(deps),
    interceptors: sharedInterceptors,
    grpc: true,
    grpcWeb: true,
    connect: true,
    readMaxBytes: config.bodyLimitBytes,
    contextValues: (request) => createContextValues().set(peerKey, request.ip).set(requestIdKey, request.id),
  });

  // The REST door calls the same router in process, so every interceptor runs for it too. It lives
  // in a sibling scope because the Connect plugin replaces the body parsers in its own.
  const transport = createRouterTransport(routes(deps), { router: { interceptors: sharedInterceptors } });
  await app.register(async (rest) => registerRestRoutes(rest, transport, config.bodyLimitBytes));

  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: "Not found" }));
  return app;
}
