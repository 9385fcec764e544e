import { defineSignal, type LocalActivityOptions } from "@temporalio/workflow";
import type { DeviceReport } from "../src/modules/messages/message.types.js";

/** A device reported on the message (`sent`, `delivered` or `failed`). */
export const reportSignal = defineSignal<[DeviceReport]>("report");
/** The gateway the message is dispatched to went away. */
export const gatewayLostSignal = defineSignal<[{ gatewayId: number }]>("gatewayLost");
/** A gateway may be available now: a waiting message looks again at once. */
export const wakeSignal = defineSignal("wake");
/** The client cancelled the message (already recorded in the database). */
export const cancelSignal = defineSignal("cancel");

/** How a message moves: retries, timeouts. Taken from configuration when the workflow starts. */
export interface MessagePolicy {
  maxAttempts: number;
  retryInitialMs: number;
  retryMaxMs: number;
  dispatchTimeoutMs: number;
  deliveryTimeoutMs: number;
  pushScheduleToStartMs: number;
  noGatewayRecheckMs: number;
  /**
   * How long a gateway that acknowledged the message and reports nothing keeps it before it goes to
   * another gateway; 0 or absent (workflows started before it existed): never.
   */
  resendUnreportedAfterMs?: number;
}

/** The input of `messageWorkflow`. */
export interface MessageWorkflowInput {
  messageId: string;
  policy: MessagePolicy;
  /**
   * The attempt the instance that started the workflow already handed to a phone connected there
   * (its first dispatch, made before the start so that the phone need not wait for the engine).
   */
  pushed?: number;
}

/**
 * How message workflows run their database steps: short, in the worker that runs the workflow (local
 * activities, no round trip through the Temporal server per step), retried until the database
 * answers, so that a message is never dropped for an outage.
 */
export const databaseSteps: LocalActivityOptions = {
  startToCloseTimeout: "30 seconds",
  localRetryThreshold: "10 seconds",
  retry: { initialInterval: "1 second", maximumInterval: "30 seconds" },
};

/** The wait before the attempt after attempt number `attempt`: exponential, capped. */
export function backoffMs(policy: MessagePolicy, attempt: number): number {
  return Math.min(policy.retryMaxMs, policy.retryInitialMs * 2 ** Math.max(0, attempt - 1));
}
