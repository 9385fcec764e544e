import { proxyActivities } from "@temporalio/workflow";
import type { GatewayActivities } from "../src/modules/gateways/gateways.activities.js";
import type { MessageActivities } from "../src/modules/messages/messages.activities.js";
import type { WebhookActivities } from "../src/modules/webhooks/webhooks.activities.js";

const { startMissingMessageWorkflows } = proxyActivities<MessageActivities>({
  startToCloseTimeout: "2 minutes",
  retry: { maximumAttempts: 5 },
});

const { resetDailyCounters } = proxyActivities<GatewayActivities>({
  startToCloseTimeout: "2 minutes",
  retry: { maximumAttempts: 5 },
});

const { dispatchPendingEvents } = proxyActivities<WebhookActivities>({
  startToCloseTimeout: "2 minutes",
  retry: { maximumAttempts: 5 },
});

/**
 * Starts workflows for messages that were stored while Temporal did not answer, and hands to
 * webhooks the events that were recorded but never dispatched, so that nothing accepted is left
 * unmoved. Scheduled every 30 seconds.
 */
export async function messageSweeperWorkflow(input: {
  olderThanSeconds: number;
}): Promise<{ started: number; events: number }> {
  return { started: await startMissingMessageWorkflows(input), events: await dispatchPendingEvents(input) };
}

/** Resets the gateways' daily counters; scheduled at midnight in the configured time zone. */
export async function resetDailyCountersWorkflow(): Promise<{ gateways: number }> {
  return { gateways: await resetDailyCounters() };
}
