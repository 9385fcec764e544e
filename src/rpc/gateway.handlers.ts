import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { GatewayService } from "../../gen/smsgw/v1/gateway_pb.js";
import type { Config } from "../config.js";
import type { DeviceHub } from "../modules/devices/index.js";
import type { GatewayRegistry } from "../modules/gateways/index.js";
import type { InboundService } from "../modules/inbound/index.js";
import type { MessagesService } from "../modules/messages/index.js";
import { deviceStream, reportId } from "./device-stream.js";
import { callingGateway } from "./principal.js";

/** A device's `device_info` as kept: at most 16 keys of text (cut at 255 characters), numbers or flags. */
function deviceInfo(info: Record<string, unknown>): Record<string, string | number | boolean> {
  const kept: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(info).slice(0, 16)) {
    if (typeof value === "string") kept[key.slice(0, 64)] = value.slice(0, 255);
    else if (typeof value === "number" || typeof value === "boolean") kept[key.slice(0, 64)] = value;
  }
  return kept;
}

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

/** GatewayService on the shared services. */
export function gatewayHandlers(deps: {
  config: Config;
  gateways: GatewayRegistry;
  messages: MessagesService;
  hub: DeviceHub;
  inbound: InboundService;
}): ServiceImpl<typeof GatewayService> {
  return {
    async register(req, ctx) {
      const { gateway, apiKey } = await deps.gateways.register({
        deviceId: req.deviceId,
        name: req.name,
        ...(req.deviceInfo === undefined ? {} : { metadata: { device_info: deviceInfo(req.deviceInfo) } }),
      });
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
      return { success: true, pendingMessages: await deps.messages.pendingFor(gateway.gatewayId) };
    },

    async reportReceived(req, ctx) {
      const gateway = callingGateway(ctx);
      const { id } = await deps.inbound.receive(gateway.gatewayId, {
        sender: req.sender,
        message: req.message,
        timestamp: req.timestamp === undefined ? undefined : timestampDate(req.timestamp),
        reportId: reportId(req.reportId),
      });
      return { success: true, messageId: id };
    },

    async reportStatus(req, ctx) {
      const gateway = callingGateway(ctx);
      await deps.messages.report(gateway.gatewayId, req.messageId, req.status, req.errorMessage ?? null);
      return { success: true };
    },

    connect: (requests, ctx) => deviceStream(deps.hub, requests, ctx),
  };
}
