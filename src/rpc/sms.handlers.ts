import type { JsonObject } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { SmsService } from "../../gen/smsgw/v1/sms_pb.js";
import type { InboundService } from "../modules/inbound/index.js";
import type { Caller, MessagesService, SendInput } from "../modules/messages/index.js";
import { callingClient } from "./principal.js";

function callerOf(ctx: HandlerContext): Caller {
  const client = callingClient(ctx);
  return { keyId: client.keyId, admin: client.scope === "admin" };
}

const optionalDate = (value: Date | null) => (value === null ? undefined : timestampFromDate(value));

/** The send options a single send and a batch share; the header supplies a missing idempotency key. */
function sendOptions(
  req: {
    message: string;
    idempotencyKey?: string;
    priority?: number;
    sendAt?: Timestamp;
    validitySeconds?: number;
    metadata?: JsonObject;
  },
  ctx: HandlerContext,
): Omit<SendInput, "to"> {
  return {
    message: req.message,
    idempotencyKey: req.idempotencyKey ?? ctx.requestHeader.get("idempotency-key") ?? undefined,
    priority: req.priority,
    sendAt: req.sendAt === undefined ? undefined : timestampDate(req.sendAt),
    validitySeconds: req.validitySeconds,
    metadata: req.metadata,
  };
}

/** SmsService on the messages and inbound modules. */
export function smsHandlers(deps: {
  messages: MessagesService;
  inbound: InboundService;
}): ServiceImpl<typeof SmsService> {
  return {
    async sendSms(req, ctx) {
      const { view } = await deps.messages.send(callerOf(ctx), {
        ...sendOptions(req, ctx),
        to: req.to,
        gatewayDeviceId: req.gatewayId,
      });
      return { success: true, messageId: view.id, status: view.status };
    },

    async sendSmsBatch(req, ctx) {
      const views = await deps.messages.sendBatch(callerOf(ctx), req.to, sendOptions(req, ctx));
      return {
        success: true,
        messages: views.map((view) => ({ messageId: view.id, to: view.recipient, status: view.status })),
      };
    },

    async cancelSms(req, ctx) {
      const view = await deps.messages.cancel(callerOf(ctx), req.messageId);
      return { success: true, messageId: view.id, status: view.status };
    },

    async listSmsAttempts(req, ctx) {
      const attempts = await deps.messages.attempts(callerOf(ctx), req.messageId);
      return {
        messageId: req.messageId,
        attempts: attempts.map((attempt) => ({
          attempt: attempt.attempt,
          gatewayId: attempt.gatewayDeviceId ?? undefined,
          dispatchedAt: timestampFromDate(attempt.dispatchedAt),
          acknowledgedAt: optionalDate(attempt.acknowledgedAt),
          endedAt: optionalDate(attempt.endedAt),
          outcome: attempt.outcome ?? undefined,
          error: attempt.error ?? undefined,
        })),
      };
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
