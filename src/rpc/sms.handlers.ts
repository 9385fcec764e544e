import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { SmsService } from "../../gen/smsgw/v1/sms_pb.js";
import type { InboundService } from "../modules/inbound/index.js";
import type { Caller, MessagesService } from "../modules/messages/index.js";
import { callingClient } from "./principal.js";

function callerOf(ctx: HandlerContext): Caller {
  const client = callingClient(ctx);
  return { keyId: client.keyId, admin: client.scope === "admin" };
}

const optionalDate = (value: Date | null) => (value === null ? undefined : timestampFromDate(value));

/** SmsService on the messages and inbound modules. */
export function smsHandlers(deps: {
  messages: MessagesService;
  inbound: InboundService;
}): ServiceImpl<typeof SmsService> {
  return {
    async sendSms(req, ctx) {
      const { view } = await deps.messages.send(callerOf(ctx), {
        to: req.to,
        message: req.message,
        idempotencyKey: req.idempotencyKey ?? ctx.requestHeader.get("idempotency-key") ?? undefined,
        priority: req.priority,
        sendAt: req.sendAt === undefined ? undefined : timestampDate(req.sendAt),
        validitySeconds: req.validitySeconds,
        gatewayDeviceId: req.gatewayId,
        metadata: req.metadata,
      });
      return { success: true, messageId: view.id, status: view.status };
    },

    async sendSmsBatch(req, ctx) {
      const views = await deps.messages.sendBatch(callerOf(ctx), req.to, {
        message: req.message,
        idempotencyKey: req.idempotencyKey ?? ctx.requestHeader.get("idempotency-key") ?? undefined,
        priority: req.priority,
        sendAt: req.sendAt === undefined ? undefined : timestampDate(req.sendAt),
        validitySeconds: req.validitySeconds,
        metadata: req.metadata,
      });
      return {
        success: true,
        messages: views.map((view) => ({ messageId: view.id, to: view.recipient, status: view.status })),
      };
    },

    async cancelSms(req, ctx) {
      const view = await deps.messages.cancel(callerOf(ctx), req.messageId);
      return { success: true, messageId: view.id, status: view.status };
    },

    async listReceivedSms(req, ctx) {
      callingClient(ctx);
      const page = await deps.inbound.list({
        phoneNumber: req.phoneNumber,
        since: req.since === undefined ? undefined : timestampDate(req.since),
        limit: req.limit,
        page: req.page,
      });
      return {
        messages: page.messages.map((message) => ({
          messageId: message.id,
          from: message.sender,
          message: message.body,
          receivedAt: timestampFromDate(message.receivedAt),
        })),
        total: page.total,
        page: page.page,
        pages: page.pages,
      };
    },

    async getSmsStatus(req, ctx) {
      const view = await deps.messages.get(callerOf(ctx), req.messageId);
      return {
        messageId: view.id,
        status: view.status,
        sentAt: optionalDate(view.sentAt),
        deliveredAt: optionalDate(view.deliveredAt),
        failedAt: optionalDate(view.failedAt),
        errorMessage: view.errorMessage ?? undefined,
      };
    },
  };
}
