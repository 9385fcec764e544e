import type { Pick } from "./gateway-picker.js";
import type { AttemptEnd, RequeueResult } from "./message.repository.js";
import type { AttemptInput, AttemptStart, OutboundStatus, PushCommand } from "./message.types.js";
import type { MessageLifecycle, MessagePlan } from "./message-lifecycle.js";
import type { MessagesService } from "./messages.service.js";

/** The message activities workflows call: plain JSON in and out, each safe to retry. */
export function createMessageActivities(deps: {
  lifecycle: MessageLifecycle;
  messages: MessagesService;
  /** Hands a command to a phone connected to this process; false when it is not connected here. */
  pushHere: (command: PushCommand) => Promise<boolean>;
  /** Tells the starter that this message's workflow took its first step. */
  firstStepDone?: (messageId: string) => void;
}) {
  const { lifecycle } = deps;
  const startAttempt = (input: AttemptInput): Promise<AttemptStart> => lifecycle.startAttempt(input, deps.pushHere);
  return {
    /**
     * Loads the message's plan and, when it is due now, starts its first attempt: on the happy path
     * the whole dispatch is this one step.
     */
    beginMessage: async (input: {
      messageId: string;
      /** The attempt the starter already pushed to a phone connected here, if any. */
      pushed?: number;
    }): Promise<{ plan: MessagePlan | null; first: AttemptStart | null }> => {
      try {
        return await lifecycle.begin(input.messageId, input.pushed, deps.pushHere);
      } finally {
        deps.firstStepDone?.(input.messageId);
      }
    },
    startAttempt,
    messageState: (input: { messageId: string; gatewayId: number }): Promise<OutboundStatus> =>
      lifecycle.state(input.messageId, input.gatewayId),
    loadMessagePlan: (messageId: string): Promise<MessagePlan | null> => lifecycle.plan(messageId),
    pickGateway: (input: { preferredGatewayId: number | null; triedGatewayIds: number[] }): Promise<Pick> =>
      lifecycle.pick(input),
    dispatchMessage: (input: { messageId: string; gatewayId: number; attempt: number }): Promise<boolean> =>
      lifecycle.dispatch(input.messageId, input.gatewayId, input.attempt),
    /** Puts the message back in the queue unless its gateway holds it; says which. */
    requeueMessage: (input: AttemptEnd & { force?: boolean }): Promise<RequeueResult> =>
      lifecycle.requeue(input, input.force === true),
    markMessageSent: (input: { messageId: string; gatewayId: number }) =>
      lifecycle.markSent(input.messageId, input.gatewayId),
    markMessageDelivered: (input: { messageId: string; gatewayId: number }) =>
      lifecycle.markDelivered(input.messageId, input.gatewayId).then((result) => result.moved),
    markMessageFailed: (input: { messageId: string; error: string }) =>
      lifecycle.markFailed(input.messageId, input.error),
    markMessageExpired: (input: { messageId: string }) => lifecycle.markExpired(input.messageId),
    closeMessageAttempt: (input: { messageId: string; attempt: number; outcome: string }) =>
      lifecycle.closeAttempt(input.messageId, input.attempt, input.outcome),
    /** Starts workflows for messages stored while Temporal did not answer. */
    startMissingMessageWorkflows: (input: { olderThanSeconds: number }): Promise<number> =>
      deps.messages.startMissingWorkflows(input.olderThanSeconds),
  };
}

/** The message activities' types, for workflow code. */
export type MessageActivities = ReturnType<typeof createMessageActivities>;
