import type { AttemptResult } from "./webhook-sender.js";
import type { WebhookDispatcher } from "./webhooks.service.js";

/** The webhook activities: plain JSON in and out. */
export function createWebhookActivities(webhooks: WebhookDispatcher) {
  return {
    /** One HTTP attempt of a delivery, recorded. Never throws for the endpoint's failures. */
    deliverWebhook: (input: { deliveryId: string; attempt: number }): Promise<AttemptResult> =>
      webhooks.attempt(input.deliveryId, input.attempt),
    finishWebhookDelivery: (input: { deliveryId: string; status: "succeeded" | "failed" }): Promise<void> =>
      webhooks.finish(input.deliveryId, input.status),
    /** Hands events that were recorded but never dispatched to their endpoints. */
    dispatchPendingEvents: (input: { olderThanSeconds: number }): Promise<number> =>
      webhooks.dispatchPending(input.olderThanSeconds),
  };
}

/** The webhook activities' types, for workflow code. */
export type WebhookActivities = ReturnType<typeof createWebhookActivities>;
