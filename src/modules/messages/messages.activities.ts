import type { Pick } from "./gateway-picker.js";
import type { MessageLifecycle, MessagePlan } from "./message-lifecycle.js";
import type { resetDailyCounters } from "./message-stats.js";
import type { MessagesService } from "./messages.service.js";

/** The message activities workflows call: plain JSON in and out, each safe to retry. */
export function createMessageActivities(deps: {
  lifecycle: MessageLifecycle;
  messages: MessagesService;
  resetCounters: () => ReturnType<typeof resetDailyCounters>;
}) {
  const { lifecycle } = deps;
  return {
    loadMessagePlan: (messageId: string): Promise<MessagePlan | null> => lifecycle.plan(messageId),
    pickGateway: (input: { preferredGatewayId: number | null; triedGatewayIds: number[] }): Promise<Pick> =>
      lifecycle.pick(input),
    dispatchMessage: (input: { messageId: string; gatewayId: number; attempt: number }): Promise<boolean> =>
      lifecycle.dispatch(input.messageId, input.gatewayId, input.attempt),
    requeueMessage: (input: {
      messageId: string;
      gatewayId: number;
      attempt: number;
      outcome: string;
      error: string;
    }) => lifecycle.requeue(input.messageId, input.gatewayId, input.attempt, input.outcome, input.error),
    markMessageSent: (input: { messageId: string; gatewayId: number }) =>
      lifecycle.markSent(input.messageId, input.gatewayId),
    markMessageDelivered: (input: { messageId: string; gatewayId: number }) =>
      lifecycle.markDelivered(input.messageId, input.gatewayId),
    markMessageFailed: (input: { messageId: string; error: string }) =>
      lifecycle.markFailed(input.messageId, input.error),
    markMessageExpired: (input: { messageId: string }) => lifecycle.markExpired(input.messageId),
    closeMessageAttempt: (input: { messageId: string; attempt: number; outcome: string }) =>
      lifecycle.closeAttempt(input.messageId, input.attempt, input.outcome),
    /** Starts workflows for messages stored while Temporal did not answer. */
    startMissingMessageWorkflows: (input: { olderThanSeconds: number }): Promise<number> =>
      deps.messages.startMissingWorkflows(input.olderThanSeconds),
    /** Resets every gateway's daily counters; returns how many gateways. */
    resetDailyCounters: (): Promise<number> => deps.resetCounters(),
  };
}

/** The message activities' types, for workflow code. */
export type MessageActivities = ReturnType<typeof createMessageActivities>;
