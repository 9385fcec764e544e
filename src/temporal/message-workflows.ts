import type { Client } from "@temporalio/client";
import {
  cancelSignal,
  gatewayLostSignal,
  type MessagePolicy,
  reportSignal,
  wakeSignal,
} from "../../workflows/message.signals.js";
import { smsMessageId, smsStatus } from "../../workflows/search-attributes.js";
import type { MessagePolicyConfig } from "../config.js";
import type { MessageWorkflows } from "../modules/messages/index.js";
import { eachLimited, signalIfRunning, startOnce } from "./workflow-calls.js";

/** The workflow id of a message's lifecycle. */
export function messageWorkflowId(messageId: string): string {
  return `message/${messageId}`;
}

/** Limits how many starts run at once across the process, so a burst of sends cannot flood Temporal. */
class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await work();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/** Message workflows over the Temporal client: starts are idempotent by message id; signals to finished workflows are dropped. */
export function createMessageWorkflows(
  client: Client,
  options: { taskQueue: string; policy: MessagePolicyConfig },
): MessageWorkflows {
  // The workflow needs the timing settings; the picker's settings stay out of its history.
  const { defaultValiditySeconds, gatewaySendsPerMinute, failedGatewayCooldownSeconds, ...timing } = options.policy;
  const policy: MessagePolicy = timing;
  const starts = new Semaphore(64);
  const each = (messageIds: readonly string[], work: (messageId: string) => Promise<void>) =>
    eachLimited(messageIds, 32, work);
  return {
    start: (messageIds) =>
      each(messageIds, (messageId) =>
        starts.run(() =>
          startOnce(client, "messageWorkflow", {
            workflowId: messageWorkflowId(messageId),
            taskQueue: options.taskQueue,
            args: [{ messageId, policy }],
            typedSearchAttributes: [
              { key: smsMessageId, value: messageId },
              { key: smsStatus, value: "queued" },
            ],
          }),
        ),
      ),
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
