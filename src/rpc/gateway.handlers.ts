import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { GatewayService } from "../../gen/smsgw/v1/gateway_pb.js";
import type { Config } from "../config.js";
import type { GatewaysService } from "../modules/gateways/index.js";
import { callingGateway } from "./principal.js";

/** Where Action Cable devices connect: PUBLIC_URL when set, else the host the request was sent to. */
function websocketUrl(config: Config, ctx: HandlerContext): string {
  if (config.publicUrl !== undefined) {
    return `${config.publicUrl.replace(/^http/, "ws")}/cable`;
  }
  const header = ctx.requestHeader;
  const host = header.get("x-forwarded-host") ?? header.get("host") ?? `localhost:${config.port}`;
  const secure = (header.get("x-forwarded-proto") ?? (config.tls ? "https" : "http")) === "https";
  return `${secure ? "wss" : "ws"}://${host}/cable`;
}

/** GatewayService on the shared services. RPCs later issues build answer UNIMPLEMENTED until then. */
export function gatewayHandlers(deps: {
  config: Config;
  gateways: GatewaysService;
}): Partial<ServiceImpl<typeof GatewayService>> {
  return {
    async register(req, ctx) {
      const { gateway, apiKey } = await deps.gateways.register({ deviceId: req.deviceId, name: req.name });
      return { success: true, apiKey, deviceId: gateway.deviceId, websocketUrl: websocketUrl(deps.config, ctx) };
    },

    async heartbeat(req, ctx) {
      const gateway = callingGateway(ctx);
      await deps.gateways.heartbeat(gateway.gatewayId, {
        status: req.status,
        messagesInQueue: req.messagesInQueue,
        batteryLevel: req.batteryLevel,
        signalStrength: req.signalStrength,
      });
      // No outbound messages exist before the outbound pipeline does, so none are pending.
      return { success: true, pendingMessages: 0 };
    },
  };
}
