import { type Context, context, trace } from "@opentelemetry/api";
import type { Client } from "@temporalio/client";
import type { Logger } from "pino";
import {
  cancelSignal,
  gatewayLostSignal,
  type MessagePolicy,
  reportSignal,
  wakeSignal,
} from "../../workflows/message.signals.js";
import { messageLifecycle } from "../../workflows/message-lifecycle.workflow.js";
import { smsMessageId, smsStatus } from "../../workflows/search-attributes.js";
import type { MessagePolicyConfig } from "../config.js";
import type { MessageWorkflows } from "../modules/messages/index.js";
import { BoundedStarter, eachLimited, type FirstSteps, signalIfRunning, startOnce } from "./workflow-calls.js";

/** The workflow id of a message's lifecycle. */
export function messageWorkflowId(messageId: string): string {
  return `message/${messageId}`;
}

/**
 * Message workflows over the Temporal client: starts are idempotent by message id, eager (the first
 * workflow task runs in this process when its worker has a free slot) and paced; signals to
 * finished workflows are dropped.
 */
export function createMessageWorkflows(
  client: Client,
  options: {
    taskQueue: string;
    policy: MessagePolicyConfig;
    startConcurrency: number;
    startCapacity: number;
    /** Whether clients are sending hard right now: then starts make way for accepting. */
    busy: () => boolean;
    /** A lane of the starter is free again once its workflow took its first step here (or 5 s passed). */
    firstSteps: FirstSteps;
    logger: Logger;
    /** Counts a start that failed (the sweeper starts it later). */
    onStartFailure?: () => void;
    /**
     * Makes the message's first attempt before its workflow starts (`MessageLifecycle.dispatchFirst`):
     * the number of the attempt a phone connected here already has, else null.
     */
    dispatchFirst?: (messageId: string) => Promise<number | null>;
  },
): MessageWorkflows {
  // The workflow needs the timing settings; the picker's settings stay out of its history.
  const { defaultValiditySeconds, gatewaySendsPerMinute, failedGatewayCooldownSeconds, ...timing } = options.policy;
  const policy: MessagePolicy = timing;
  // Traced: a start made later by the starter still belongs to the trace of the call that accepted
  // its message. (Empty when tracing is off: no call runs in a span.)
  const traces = new Map<string, Context>();
  const startOne = (messageId: string) => {
    const traced = traces.get(messageId);
    traces.delete(messageId);
    return traced === undefined ? startUntraced(messageId) : context.with(traced, () => startUntraced(messageId));
  };
  // A phone connected here gets the command first; the workflow, started right after, carries on
  // with that attempt. A first dispatch that fails (the database) leaves it all to the workflow.
  const first = async (messageId: string): Promise<number | null> =>
    options.dispatchFirst === undefined
      ? null
      : options.dispatchFirst(messageId).catch((error: unknown) => {
          options.logger.debug({ err: error, messageId }, "the first dispatch failed; the workflow makes it");
          return null;
        });
  const startUntraced = async (messageId: string) => {
    const pushed = await first(messageId);
    return startOnce(client, messageLifecycle, {
      workflowId: messageWorkflowId(messageId),
      taskQueue: options.taskQueue,
      args: [pushed === null ? { messageId, policy } : { messageId, policy, pushed }],
      requestEagerStart: true,
      typedSearchAttributes: [
        { key: smsMessageId, value: messageId },
        { key: smsStatus, value: "queued" },
      ],
    });
  };
  const starter = new BoundedStarter(
    options.startConcurrency,
    options.startCapacity,
    // Paced by the worker: each lane waits for its workflow's first step (the dispatch) before the next.
    (messageId) => options.firstSteps.around(messageId, 5000, () => startOne(messageId)),
    (error, messageId) => {
      options.onStartFailure?.();
      options.logger.warn({ err: error, messageId }, "starting a message workflow failed; the sweeper will retry");
    },
    (dropped) => options.logger.warn({ dropped }, "the workflow starter is full; the sweeper will start the rest"),
    options.busy,
  );
  const each = (messageIds: readonly string[], work: (messageId: string) => Promise<void>) =>
    eachLimited(messageIds, 16, work);
  return {
    start: (messageIds) =>
      each(messageIds, async (messageId) => {
        await startOne(messageId);
      }),
    enqueue: (messageIds) => {
      const active = context.active();
      if (trace.getSpan(active) !== undefined) {
        // Bounded: starts the starter dropped (the sweeper makes them later) are forgotten.
        if (traces.size > 10_000) traces.clear();
        for (const messageId of messageIds) traces.set(messageId, active);
      }
      starter.enqueue(messageIds);
    },
    report: (messageId, report) => signalIfRunning(client, messageWorkflowId(messageId), reportSignal, report),
    cancel: (messageId) => signalIfRunning(client, messageWorkflowId(messageId), cancelSignal),
    gatewayLost: (messageIds, gatewayId) =>
      each(messageIds, (messageId) =>
        signalIfRunning(client, messageWorkflowId(messageId), gatewayLostSignal, { gatewayId }),
      ),
    wake: (messageIds) =>
      each(messageIds, (messageId) => signalIfRunning(client, messageWorkflowId(messageId), wakeSignal)),
  };
}
