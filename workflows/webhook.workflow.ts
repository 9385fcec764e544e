import { proxyActivities, proxyLocalActivities, sleep } from "@temporalio/workflow";
import type { WebhookActivities } from "../src/modules/webhooks/webhooks.activities.js";

/** How a delivery retries; taken from configuration when the workflow starts. */
export interface WebhookPolicy {
  /** The task queue whose worker makes the HTTP calls, apart from message processing. */
  taskQueue: string;
  timeoutMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  /** Give up once this long has passed since the delivery began. */
  retryForMs: number;
}

/**
 * One event's delivery to one endpoint (workflow id `webhook/<delivery_id>`): POST, and on network
 * errors, timeouts, 5xx, 408 and 429 retry with exponential backoff (or as `Retry-After` says) until
 * it succeeds or `retryForMs` has passed; any other answer gives up at once.
 */
export async function webhookDeliveryWorkflow(input: {
  deliveryId: string;
  policy: WebhookPolicy;
}): Promise<{ status: "succeeded" | "failed"; attempts: number }> {
  const { deliveryId, policy } = input;
  const http = proxyActivities<WebhookActivities>({
    taskQueue: policy.taskQueue,
    startToCloseTimeout: policy.timeoutMs + 15_000,
    // The activity never throws for the endpoint's failures; these retries are for our own outages.
    retry: { initialInterval: "1 second", maximumInterval: "1 minute", maximumAttempts: 10 },
  });
  const db = proxyLocalActivities<WebhookActivities>({ startToCloseTimeout: "30 seconds" });
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    const result = await http.deliverWebhook({ deliveryId, attempt });
    if (result.outcome === "succeeded" || result.outcome === "give_up") {
      const status = result.outcome === "succeeded" ? "succeeded" : "failed";
      await db.finishWebhookDelivery({ deliveryId, status });
      return { status, attempts: attempt };
    }
    const backoff = Math.min(policy.retryMaxMs, policy.retryInitialMs * 2 ** (attempt - 1));
    const delay = Math.min(policy.retryMaxMs, Math.max(backoff, result.retryAfterMs ?? 0));
    if (Date.now() + delay - started > policy.retryForMs) {
      await db.finishWebhookDelivery({ deliveryId, status: "failed" });
      return { status: "failed", attempts: attempt };
    }
    await sleep(delay);
  }
}
