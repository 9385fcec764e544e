import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { AdminService } from "../../gen/smsgw/v1/admin_pb.js";
import { GatewayService } from "../../gen/smsgw/v1/gateway_pb.js";
import { OtpService } from "../../gen/smsgw/v1/otp_pb.js";
import { SmsService } from "../../gen/smsgw/v1/sms_pb.js";
import { WebhookService } from "../../gen/smsgw/v1/webhooks_pb.js";
import type { Deps } from "../deps.js";
import { adminHandlers } from "./admin.handlers.js";
import { gatewayHandlers } from "./gateway.handlers.js";
import { authInterceptor, errorInterceptor } from "./interceptors.js";
import { otpHandlers } from "./otp.handlers.js";
import { smsHandlers } from "./sms.handlers.js";
import { textInterceptor } from "./text-check.js";
import { webhookHandlers } from "./webhook.handlers.js";

/** Every service of the contract, in the order the REST routes are registered. */
export const services = [GatewayService, SmsService, OtpService, AdminService, WebhookService] as const;

/** The interceptors every door runs, outermost first. */
export function interceptors(deps: Deps): Interceptor[] {
  return [errorInterceptor(deps.logger), authInterceptor(deps), textInterceptor()];
}

/** Registers every service's handlers; each implements every RPC of its service (the types check it). */
export function routes(deps: Deps): (router: ConnectRouter) => void {
  return (router) => {
    router.service(GatewayService, gatewayHandlers(deps));
    router.service(SmsService, smsHandlers(deps));
    router.service(OtpService, otpHandlers(deps));
    router.service(AdminService, adminHandlers(deps));
    router.service(WebhookService, webhookHandlers(deps));
  };
}
