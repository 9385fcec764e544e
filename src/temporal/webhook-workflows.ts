import type { Client } from "@temporalio/client";
import { webhookDeliveryWorkflow } from "../../workflows/webhook.workflow.js";
import type { Config } from "../config.js";
import type { WebhookWorkflows } from "../modules/webhooks/index.js";
import { startOnce } from "./workflow-calls.js";

/** The task queue whose worker makes webhook HTTP calls, apart from message processing. */
export function webhookTaskQueue(config: Config): string {
  return `${config.temporalTaskQueue}-webhooks`;
}

/** Starts `webhook/<delivery_id>` workflows; starting one twice changes nothing. */
export function createWebhookWorkflows(client: Client, config: Config): WebhookWorkflows {
  const policy = {
    taskQueue: webhookTaskQueue(config),
    timeoutMs: config.webhooks.timeoutMs,
    retryInitialMs: config.webhooks.retryInitialMs,
    retryMaxMs: config.webhooks.retryMaxMs,
    retryForMs: config.webhooks.retryForSeconds * 1000,
  };
  return {
    async start(deliveryIds) {
      for (const deliveryId of deliveryIds) {
        await startOnce(client, webhookDeliveryWorkflow, {
          workflowId: `webhook/${deliveryId}`,
          taskQueue: config.temporalTaskQueue,
          args: [{ deliveryId, policy }],
        });
      }
    },
  };
}
