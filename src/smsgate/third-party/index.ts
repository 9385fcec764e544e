import type { FastifyInstance } from "fastify";
import { httpStatusOfDomain } from "../../rpc/errors.js";
import { smsGateScope } from "../http.js";
import { contextOfClients, type SmsGateApiServices } from "./context.js";
import { deviceRoutes } from "./devices.js";
import { healthRoutes } from "./health.js";
import { inboxRoutes } from "./inbox.js";
import { messageRoutes } from "./messages.js";
import { settingsRoutes } from "./settings.js";
import { refreshRoute, tokenRoutes } from "./tokens.js";
import { webhookRoutes } from "./webhooks.js";

export type { SmsGateApiServices } from "./context.js";

// SMSGate's third-party API (github.com/android-sms-gateway/server, `handlers/*/3rdparty.go`; the
// shapes are those of github.com/android-sms-gateway/client-go), so that SMSGate's client libraries
// and what is built on them work with smsgw unchanged: one file per resource.

/** Where the API is served; the deprecated paths the clients still call are served beside the others. */
export const smsGateApiPrefixes = ["/api/3rdparty/v1", "/3rdparty/v1"] as const;

/**
 * SMSGate's third-party API on `app` (a scope of its own: SMSGate's error shape), under each of
 * `smsGateApiPrefixes`, and its health probes at the root.
 */
export async function registerSmsGateApi(app: FastifyInstance, deps: SmsGateApiServices): Promise<void> {
  const context = contextOfClients(deps);
  const routes = (prefix: string) => async (api: FastifyInstance) => {
    smsGateScope(api, {
      withCode: true,
      // SMSGate answers 400 to every invalid request where smsgw's own API answers 422.
      domainStatus: (error) => (error.code === "validation" ? 400 : httpStatusOfDomain(error)),
    });
    healthRoutes(api, context);
    refreshRoute(api, context);
    await api.register(async (authenticated) => {
      authenticated.addHook("onRequest", context.authenticate);
      messageRoutes(authenticated, context, prefix);
      deviceRoutes(authenticated, context);
      inboxRoutes(authenticated, context);
      webhookRoutes(authenticated, context);
      settingsRoutes(authenticated, context);
      tokenRoutes(authenticated, context);
    });
  };
  for (const prefix of smsGateApiPrefixes) await app.register(routes(prefix), { prefix });
  // SMSGate's server answers its probes at the root too (`/health`, `/health/live`, …).
  healthRoutes(app, context);
}
