import { randomUUID } from "node:crypto";
import { cors as connectCors } from "@connectrpc/connect";
import fastifyCors from "@fastify/cors";
import fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyServerFactory,
  LogController,
} from "fastify";
import type { Config } from "./config.js";
import type { EmbeddedBackend } from "./embedded/backends.js";
import { registerApiDocs } from "./http/api-docs.js";
import { registerConsole } from "./http/console.js";
import { checkHealth } from "./http/health.js";
import { registerMetrics } from "./http/metrics.js";
import type { RateLimiter } from "./modules/rate-limits/index.js";
import { registerConnectDoor } from "./rpc/connect-door.js";
import { callContext } from "./rpc/context.js";
import { registerRestRoutes } from "./rpc/rest-transcoder.js";
import {
  type HandlerServices,
  handlers,
  type InterceptorServices,
  implementations,
  interceptors,
  routes,
  services,
} from "./rpc/routes.js";
import type { ClientLoad } from "./shared/client-load.js";
import type { Metrics } from "./shared/metrics.js";
import { appVersion } from "./shared/version.js";
import {
  registerSmsGateApi,
  registerSmsGateMobile,
  type SmsGateApiServices,
  type SmsGateMobileServices,
  smsGateApiPrefixes,
  smsGateMobilePrefixes,
} from "./smsgate/index.js";
import { temporalMetricsAddress } from "./temporal/runtime.js";

/** What the app needs: the services of the handlers and interceptors, the health probes, its own counters. */
export type AppServices = HandlerServices &
  InterceptorServices &
  Parameters<typeof checkHealth>[0] & {
    config: Config;
    /** Named on `/up`: the backends this process runs for itself. */
    embedded: readonly EmbeddedBackend[];
    metrics: Metrics;
    load: ClientLoad;
    rateLimiter: Pick<RateLimiter, "mode">;
  } & Omit<
    SmsGateMobileServices,
    "idleTimeoutSeconds" | "publicUrl" | "keys" | "gateways" | "messages" | "webhooks" | "events"
  > & {
    keys: SmsGateMobileServices["keys"] & SmsGateApiServices["keys"];
    gateways: SmsGateMobileServices["gateways"] & SmsGateApiServices["gateways"];
    messages: SmsGateMobileServices["messages"] & SmsGateApiServices["messages"];
    inbound: SmsGateMobileServices["inbound"] & SmsGateApiServices["inbound"];
    webhooks: SmsGateMobileServices["webhooks"] & SmsGateApiServices["webhooks"];
    events: SmsGateMobileServices["events"] & SmsGateApiServices["events"];
  } & Pick<SmsGateApiServices, "webhookSecrets" | "accessTokens">;

/**
 * Builds the fastify app with every door (gRPC, gRPC-Web, Connect, REST), `/up`, `/metrics` and
 * CORS, without listening.
 */
export async function buildApp(
  deps: AppServices,
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
    // Ids are short; a longer path segment is refused as a malformed URL, in the documented shape.
    routerOptions: { maxParamLength: 1024 },
    frameworkErrors: (error, request, reply) => {
      const message = error.code === "FST_ERR_MAX_PARAM_LENGTH" ? "URL is too long" : "Malformed URL";
      // SMSGate's APIs answer in their own shape, even here.
      const url = request.url ?? "";
      const body = smsGateApiPrefixes.some((prefix) => url.startsWith(`${prefix}/`))
        ? { message, code: 400 }
        : smsGateMobilePrefixes.some((prefix) => url.startsWith(`${prefix}/`))
          ? { message }
          : { error: message };
      void (reply as unknown as FastifyReply).code(400).send(body);
    },
    ...(options.serverFactory === undefined ? {} : { serverFactory: options.serverFactory }),
  });

  await app.register(fastifyCors, {
    origin: config.allowedOrigins === "*" ? "*" : [...config.allowedOrigins],
    methods: [...new Set([...connectCors.allowedMethods, "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])],
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

  // Every error fastify itself raises (body too large, bad content type, ...) answers in the
  // documented shape: `{"error": ...}`, and never with internal detail.
  app.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
    const status =
      error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) request.log.error({ err: error }, "unexpected error");
    return reply.code(status).send({ error: status === 500 ? "Internal server error" : error.message });
  });

  registerMetrics(app, deps.metrics, temporalMetricsAddress);
  registerApiDocs(app);
  await registerConsole(app);

  // Requests being served: while clients send hard, message workflow starts make way for them.
  // Streaming calls (a device's stream, a console's fleet watch) last for hours and are not counted.
  const streaming = new Set([
    ...services.flatMap((service) =>
      service.methods
        .filter((method) => method.methodKind !== "unary")
        .map((method) => `/${service.typeName}/${method.name}`),
    ),
    ...smsGateMobilePrefixes.map((prefix) => `${prefix}/events`),
  ]);
  // A phone's own calls (the SMSGate app fetching and reporting) are the devices' traffic, as a
  // stream's frames are, not clients sending: they never hold the starter back.
  const phoneCall = (url: string) => smsGateMobilePrefixes.some((prefix) => url.startsWith(`${prefix}/`));
  app.addHook("onRequest", async (request, reply) => {
    if (streaming.has(request.url) || phoneCall(request.url)) return;
    deps.load.began();
    // 'close' comes once, whether the answer was sent (raw, by the Connect door, or not) or the client left.
    reply.raw.once("close", () => deps.load.ended());
  });

  // 200 while sends can be taken (they need PostgreSQL only); "degraded" names what is down.
  app.get("/up", async (_request, reply) => {
    const health = await checkHealth(deps);
    const accepting = health.checks.database === "ok";
    return reply.code(accepting ? 200 : 503).send({
      status: health.healthy ? "ok" : accepting ? "degraded" : "unavailable",
      ...health.checks,
      rate_limiting: deps.rateLimiter.mode,
      embedded: deps.embedded,
    });
  });

  const sharedInterceptors = interceptors(deps);
  const shared = handlers(deps);
  await registerConnectDoor(app, {
    routes: routes(shared),
    interceptors: sharedInterceptors,
    readMaxBytes: config.bodyLimitBytes,
    contextValues: callContext,
    logger: deps.logger,
  });

  // The REST door calls the same handlers in process, through the same interceptors. It lives in a
  // sibling scope because the Connect door replaces the body parsers in its own.
  await app.register(async (rest) =>
    registerRestRoutes(rest, implementations(shared), sharedInterceptors, config.bodyLimitBytes),
  );

  // Phones running SMSGate's app, in a scope of their own (the app's error shape).
  await app.register(async (mobile) =>
    registerSmsGateMobile(mobile, {
      ...deps,
      idleTimeoutSeconds: config.devices.idleTimeoutSeconds,
      publicUrl: config.publicUrl,
    }),
  );

  // SMSGate's third-party API, for its client libraries (its own scope and error shape too).
  await app.register(async (api) =>
    registerSmsGateApi(api, {
      ...deps,
      requestsPerWindow: config.rateLimit.requestsPerWindow,
      health: () => checkHealth(deps),
      version: appVersion,
    }),
  );

  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: "Not found" }));
  return app;
}
