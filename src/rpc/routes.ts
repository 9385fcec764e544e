import { type ConnectRouter, createServiceImplSpec, type Interceptor, type ServiceImplSpec } from "@connectrpc/connect";
import type { Logger } from "pino";
import { AccountService, AdminService } from "../../gen/smsgw/v1/admin_pb.js";
import { GatewayService } from "../../gen/smsgw/v1/gateway_pb.js";
import { OtpService } from "../../gen/smsgw/v1/otp_pb.js";
import { SmsService } from "../../gen/smsgw/v1/sms_pb.js";
import { WebhookService } from "../../gen/smsgw/v1/webhooks_pb.js";
import type { Tracing } from "../tracing.js";
import { accountHandlers, adminHandlers } from "./admin.handlers.js";
import { gatewayHandlers } from "./gateway.handlers.js";
import { authInterceptor, errorInterceptor, tracingInterceptor } from "./interceptors.js";
import { otpHandlers } from "./otp.handlers.js";
import { Reflection } from "./reflection.js";
import { smsHandlers } from "./sms.handlers.js";
import { textInterceptor } from "./text-check.js";
import { webhookHandlers } from "./webhook.handlers.js";

/** Every service of the contract. */
export const services = [GatewayService, SmsService, OtpService, AdminService, AccountService, WebhookService] as const;

/** What the interceptors need: the logger, tracing, and what authentication asks. */
export type InterceptorServices = { logger: Logger; tracing: Tracing | undefined } & Parameters<
  typeof authInterceptor
>[0];

/** What the handlers of every service need: the union of each factory's own narrow parameter. */
export type HandlerServices = Parameters<typeof gatewayHandlers>[0] &
  Parameters<typeof smsHandlers>[0] &
  Parameters<typeof otpHandlers>[0] &
  Parameters<typeof adminHandlers>[0] &
  Parameters<typeof webhookHandlers>[0];

/** The interceptors every door runs, outermost first. */
export function interceptors(deps: InterceptorServices): Interceptor[] {
  const traced = deps.tracing === undefined ? [] : [tracingInterceptor()];
  return [...traced, errorInterceptor(deps.logger), authInterceptor(deps), textInterceptor()];
}

/** Every service's handlers, created once and shared by every door. */
export function handlers(deps: HandlerServices) {
  return {
    gateway: gatewayHandlers(deps),
    sms: smsHandlers(deps),
    otp: otpHandlers(deps),
    admin: adminHandlers(deps),
    account: accountHandlers(),
    webhook: webhookHandlers(deps),
  };
}

export type ServiceHandlers = ReturnType<typeof handlers>;

/**
 * Registers the handlers on a Connect router (the gRPC, gRPC-Web and Connect doors); each handler
 * factory implements every RPC of its service (its `ServiceImpl` return type checks it). Server
 * reflection describes every service.
 */
export function routes(h: ServiceHandlers): (router: ConnectRouter) => void {
  const reflection = new Reflection(services);
  return (router) => {
    reflection.register(router);
    router.service(GatewayService, h.gateway);
    router.service(SmsService, h.sms);
    router.service(OtpService, h.otp);
    router.service(AdminService, h.admin);
    router.service(AccountService, h.account);
    router.service(WebhookService, h.webhook);
  };
}

/** The same handlers as method specs, for the REST door's in-process calls. */
export function implementations(h: ServiceHandlers): ServiceImplSpec[] {
  return [
    createServiceImplSpec<typeof GatewayService>(GatewayService, h.gateway),
    createServiceImplSpec<typeof SmsService>(SmsService, h.sms),
    createServiceImplSpec<typeof OtpService>(OtpService, h.otp),
    createServiceImplSpec<typeof AdminService>(AdminService, h.admin),
    createServiceImplSpec<typeof AccountService>(AccountService, h.account),
    createServiceImplSpec<typeof WebhookService>(WebhookService, h.webhook),
  ];
}
