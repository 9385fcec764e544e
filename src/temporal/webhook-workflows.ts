import { type Client, WorkflowExecutionAlreadyStartedError } from "@temporalio/client";
import type { Config } from "../config.js";
import type { WebhookWorkflows } from "../modules/webhooks/index.js";

/** The task queue whose worker makes webhook HTTP calls, apart from message processing. */
export function webhookTaskQueue(config: Config): string {
  return `${config.temporalTaskQueue}-webhooks`;
}

/** Starts `webhook/<delivery_id>` workflows; starting one twice changes nothing. */
export function createWebhookWorkflows(client: Client, config: Config): WebhookWorkflows {
  return {
    async start(deliveryIds) {
      for (const deliveryId of deliveryIds) {
        try {
          await client.workflow.start("webhookDeliveryWorkflow", {
            workflowId: `webhook/${deliveryId}`,
            taskQueue: config.temporalTaskQueue,
            args: [
              {
                deliveryId,
                policy: {
                  taskQueue: webhookTaskQueue(config),
                  timeoutMs: config.webhooks.timeoutMs,
                  retryInitialMs: config.webhooks.retryInitialMs,
                  retryMaxMs: config.webhooks.retryMaxMs,
                  retryForMs: config.webhooks.retryForSeconds * 1000,
                },
              },
            ],
            workflowIdConflictPolicy: "USE_EXISTING",
            workflowIdReusePolicy: "REJECT_DUPLICATE",
          });
        } catch (error) {
          if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
        }
      }
    },
  };
}
