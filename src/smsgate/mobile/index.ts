import type { FastifyInstance } from "fastify";
import { smsGateScope } from "../http.js";
import { ReplayGuard } from "../replay-guard.js";
import { SignInCodes } from "../sign-in-codes.js";
import { contextOfPhones, type SmsGateMobileServices } from "./context.js";
import { deviceRoutes } from "./device.js";
import { eventRoutes } from "./events.js";
import { inboundRoutes } from "./inbound.js";
import { messageRoutes } from "./messages.js";

export type { SmsGateMobileServices } from "./context.js";

// The mobile API of SMSGate's Android app in private-server mode (github.com/capcom6/android-sms-gateway,
// `GatewayApi.kt`; the server side is github.com/android-sms-gateway/server, `handlers/mobile.go`),
// so that a phone running the unchanged app is an smsgw gateway like any other: registered with a
// registration token (or into an account), authenticated by its gateway key (the app's device
// token), told of messages on its Server-Sent Events stream and fetching them, reporting full
// snapshots of their state, each turned into the device frame every other channel sends.

/** Where the app's API is served; the app's "API URL" is the server's address and one of these. */
export const smsGateMobilePrefixes = ["/api/mobile/v1", "/mobile/v1"] as const;

/**
 * The mobile API of the SMSGate app, on `app` (a scope of its own: errors answer in the app's shape,
 * `{"message": ...}`), under each of `smsGateMobilePrefixes`.
 */
export async function registerSmsGateMobile(app: FastifyInstance, deps: SmsGateMobileServices): Promise<void> {
  const context = contextOfPhones(deps, new SignInCodes(deps.redis), new ReplayGuard(deps.redis));
  const routes = async (mobile: FastifyInstance) => {
    smsGateScope(mobile, { withCode: false });
    deviceRoutes(mobile, context);
    messageRoutes(mobile, context);
    inboundRoutes(mobile, context);
    eventRoutes(mobile, context);
  };
  for (const prefix of smsGateMobilePrefixes) await app.register(routes, { prefix });
}
