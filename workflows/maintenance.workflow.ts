import { proxyActivities } from "@temporalio/workflow";
import type { MessageActivities } from "../src/modules/messages/messages.activities.js";

const { startMissingMessageWorkflows, resetDailyCounters } = proxyActivities<MessageActivities>({
  startToCloseTimeout: "2 minutes",
  retry: { maximumAttempts: 5 },
});

/**
 * Starts workflows for messages that were stored while Temporal did not answer, so that no accepted
 * message is left unmoved. Scheduled every 30 seconds.
 */
export async function messageSweeperWorkflow(input: { olderThanSeconds: number }): Promise<{ started: number }> {
  return { started: await startMissingMessageWorkflows(input) };
}

/** Resets the gateways' daily counters; scheduled at midnight in the configured time zone. */
export async function resetDailyCountersWorkflow(): Promise<{ gateways: number }> {
  return { gateways: await resetDailyCounters() };
}
