import type { JsonObject } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { SmsService } from "../../gen/smsgw/v1/sms_pb.js";
import type { EventsService } from "../modules/events/index.js";
import type { InboundService } from "../modules/inbound/index.js";
import type { Caller, ListedMessageView, MessagesService, SendInput } from "../modules/messages/index.js";
import type { WebhookDispatcher } from "../modules/webhooks/index.js";
import { messageWorkflowId } from "../temporal/message-workflows.js";
import { callingClient } from "./principal.js";
import { optionalTimestamp } from "./timestamps.js";
import { deliveryMessage } from "./webhook.handlers.js";

function callerOf(ctx: HandlerContext): Caller {
  const client = callingClient(ctx);
  return { keyId: client.keyId, admin: client.scope === "admin" };
}

/** A message as listed. */
function summary(view: ListedMessageView) {
  return {
    messageId: view.id,
    to: view.recipient,
    message: view.body,
    status: view.status,
    gatewayId: view.gatewayDeviceId ?? undefined,
    attempts: view.attempts,
    priority: view.priority,
    createdAt: timestampFromDate(view.createdAt),
    sentAt: optionalTimestamp(view.sentAt),
    deliveredAt: optionalTimestamp(view.deliveredAt),
    failedAt: optionalTimestamp(view.failedAt),
    errorMessage: view.errorMessage ?? undefined,
  };
}

/** The send options a single send and a batch share; the header supplies a missing idempotency key. */
function sendOptions(
  req: {
    message: string;
    idempotencyKey?: string;
    priority?: number;
    sendAt?: Timestamp;
    validitySeconds?: number;
    metadata?: JsonObject;
    simNumber?: number;
    deliveryReport?: boolean;
    dataPort?: number;
    encrypted?: boolean;
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
    simNumber: req.simNumber,
    deliveryReport: req.deliveryReport,
    dataPort: req.dataPort,
    encrypted: req.encrypted,
  };
}

/** SmsService on the messages and inbound modules. */
export function smsHandlers(deps: {
  messages: MessagesService;
  inbound: InboundService;
  events: EventsService;
  webhooks: WebhookDispatcher;
  config: { temporalUiUrl: string | undefined; temporalNamespace: string };
}): ServiceImpl<typeof SmsService> {
  const attemptsOf = async (caller: Caller, messageId: string) =>
    (await deps.messages.attempts(caller, messageId)).map((attempt) => ({
      attempt: attempt.attempt,
      gatewayId: attempt.gatewayDeviceId ?? undefined,
      dispatchedAt: timestampFromDate(attempt.dispatchedAt),
      acknowledgedAt: optionalTimestamp(attempt.acknowledgedAt),
      endedAt: optionalTimestamp(attempt.endedAt),
      outcome: attempt.outcome ?? undefined,
      error: attempt.error ?? undefined,
    }));
  return {
    async listSms(req, ctx) {
      const page = await deps.messages.list(callerOf(ctx), {
        status: req.status,
        gatewayDeviceId: req.gatewayId,
        to: req.to,
        since: req.since === undefined ? undefined : timestampDate(req.since),
        until: req.until === undefined ? undefined : timestampDate(req.until),
        limit: req.limit,
        pageToken: req.pageToken,
      });
      return { messages: page.messages.map(summary), nextPageToken: page.nextPageToken };
    },

    async getSmsJourney(req, ctx) {
      const caller = callerOf(ctx);
      const listed = await deps.messages.listed(caller, req.messageId);
      const workflowId = messageWorkflowId(listed.id);
      const ui = deps.config.temporalUiUrl;
      return {
        message: summary(listed),
        attempts: await attemptsOf(caller, listed.id),
        events: (await deps.events.journalOf(listed.id)).map(({ payload, createdAt }) => ({
          event: payload.event,
          data: payload as JsonObject,
          createdAt: timestampFromDate(createdAt),
        })),
        // Endpoints are the operator's: an application's key does not see where its events go.
        webhookDeliveries: caller.admin
          ? (await deps.webhooks.deliveriesOfMessage(listed.id)).map((found) => ({
              webhookId: found.webhookId,
              url: found.url,
              delivery: deliveryMessage(found.delivery),
            }))
          : [],
        workflowId,
        workflowUrl:
          ui === undefined
            ? ""
            : `${ui.replace(/\/$/, "")}/namespaces/${encodeURIComponent(deps.config.temporalNamespace)}/workflows/${encodeURIComponent(workflowId)}`,
      };
    },

    async sendSms(req, ctx) {
      const { view } = await deps.messages.send(callerOf(ctx), {
        ...sendOptions(req, ctx),
        to: req.to,
        gatewayDeviceId: req.gatewayId,
      });
      return { success: true, messageId: view.id, status: view.status };
    },

    async sendSmsBatch(req, ctx) {
      const views = await deps.messages.sendBatch(callerOf(ctx), req.to, {
        ...sendOptions(req, ctx),
        groupId: req.groupId,
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

    async listSmsAttempts(req, ctx) {
      return { messageId: req.messageId, attempts: await attemptsOf(callerOf(ctx), req.messageId) };
    },

    async listReceivedSms(req, ctx) {
      callingClient(ctx);
      const page = await deps.inbound.list({
        phoneNumber: req.phoneNumber,
        since: req.since === undefined ? undefined : timestampDate(req.since),
        until: req.until === undefined ? undefined : timestampDate(req.until),
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
        sentAt: optionalTimestamp(view.sentAt),
        deliveredAt: optionalTimestamp(view.deliveredAt),
        failedAt: optionalTimestamp(view.failedAt),
        errorMessage: view.errorMessage ?? undefined,
      };
    },
  };
}
