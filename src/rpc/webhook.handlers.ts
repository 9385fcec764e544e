import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { WebhookDeliverySchema, WebhookService } from "../../gen/smsgw/v1/webhooks_pb.js";
import type { DeliveryView, WebhookDispatcher, WebhookView } from "../modules/webhooks/index.js";
import { optionalTimestamp } from "./timestamps.js";

function toWebhook(view: WebhookView) {
  return {
    id: view.id,
    url: view.url,
    events: view.events,
    hasSecret: view.hasSecret,
    active: view.active,
    createdAt: timestampFromDate(view.createdAt),
    updatedAt: timestampFromDate(view.updatedAt),
  };
}

/** WebhookService on the webhooks module. */
export function webhookHandlers(deps: { webhooks: WebhookDispatcher }): ServiceImpl<typeof WebhookService> {
  const { webhooks } = deps;
  return {
    async createWebhook(req) {
      const view = await webhooks.create({
        url: req.url,
        events: req.events,
        secretKey: req.secretKey,
        active: req.active,
      });
      return { success: true, webhook: toWebhook(view) };
    },
    async listWebhooks() {
      return { webhooks: (await webhooks.list()).map(toWebhook) };
    },
    async updateWebhook(req) {
      const view = await webhooks.update(req.id, {
        url: req.url,
        events: req.events,
        secretKey: req.secretKey,
        active: req.active,
      });
      return { success: true, webhook: toWebhook(view) };
    },
    async deleteWebhook(req) {
      await webhooks.delete(req.id);
      return { success: true };
    },
    async testWebhook(req) {
      const result = await webhooks.test(req.id);
      return {
        success: result.outcome === "succeeded",
        statusCode: result.statusCode ?? undefined,
        durationMs: result.durationMs,
        error: result.error ?? undefined,
      };
    },
    async listWebhookDeliveries(req) {
      const deliveries = await webhooks.deliveries(req.id, req.limit ?? 50);
      return {
        deliveries: deliveries.map(deliveryMessage),
      };
    },
  };
}

/** A delivery as the contract shows it. */
export function deliveryMessage(delivery: DeliveryView): MessageInitShape<typeof WebhookDeliverySchema> {
  return {
    deliveryId: delivery.id,
    event: delivery.event,
    status: delivery.status,
    createdAt: timestampFromDate(delivery.createdAt),
    completedAt: optionalTimestamp(delivery.completedAt),
    attempts: delivery.attempts.map((attempt) => ({
      attempt: attempt.attempt,
      startedAt: timestampFromDate(attempt.startedAt),
      statusCode: attempt.statusCode ?? undefined,
      durationMs: attempt.durationMs,
      error: attempt.error ?? undefined,
    })),
  };
}
