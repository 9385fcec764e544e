import type { JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { MikroORM } from "@mikro-orm/postgresql";
import type { AdminService } from "../../gen/smsgw/v1/admin_pb.js";
import type { GatewaysService } from "../modules/gateways/index.js";
import { type MessageRepository, systemStats } from "../modules/messages/index.js";
import type { OtpService } from "../modules/otp/index.js";

/** AdminService on the shared services. */
export function adminHandlers(deps: {
  gateways: GatewaysService;
  orm: MikroORM;
  messageRepository: MessageRepository;
  otp: OtpService;
  config: { timeZone: string };
}): ServiceImpl<typeof AdminService> {
  return {
    async listGateways() {
      const gateways = await deps.gateways.list();
      return {
        gateways: gateways.map((gateway) => ({
          id: gateway.id,
          deviceId: gateway.deviceId,
          name: gateway.name,
          status: gateway.status,
          lastHeartbeatAt: gateway.lastHeartbeatAt ? timestampFromDate(gateway.lastHeartbeatAt) : undefined,
          messagesSentToday: gateway.messagesSentToday,
          messagesReceivedToday: gateway.messagesReceivedToday,
          totalMessagesSent: gateway.totalMessagesSent,
          totalMessagesReceived: gateway.totalMessagesReceived,
          active: gateway.active,
          priority: gateway.priority,
          metadata: gateway.metadata as JsonObject,
          createdAt: timestampFromDate(gateway.createdAt),
        })),
      };
    },

    async getStats() {
      const stats = await systemStats(deps.orm.em, deps.messageRepository, deps.config.timeZone);
      return {
        gateways: stats.gateways,
        messages: stats.messages,
        otp: await deps.otp.stats(deps.config.timeZone),
        timestamp: timestampFromDate(new Date()),
      };
    },

    async toggleGateway(req) {
      const gateway = await deps.gateways.toggle(req.id);
      return { success: true, gateway };
    },
  };
}
