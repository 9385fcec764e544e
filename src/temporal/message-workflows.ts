import { type Client, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from "@temporalio/client";
import type { Logger } from "pino";
import { cancelSignal, gatewayLostSignal, reportSignal, wakeSignal } from "../../workflows/message.signals.js";
import { smsMessageId, smsStatus } from "../../workflows/search-attributes.js";
import type { MessagePolicyConfig } from "../config.js";
import type { DeviceReport, MessageWorkflows } from "../modules/messages/index.js";

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

/** Runs `work` over `items`, at most `concurrency` at a time. */
async function eachLimited<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++];
      if (item !== undefined) await work(item);
    }
  });
  await Promise.all(lanes);
}

function isGone(error: unknown): boolean {
  return error instanceof WorkflowNotFoundError || String(error).includes("already completed");
}

/** Message workflows over the Temporal client: starts are idempotent by message id; signals to finished workflows are dropped. */
export function createMessageWorkflows(
  client: Client,
  options: { taskQueue: string; policy: MessagePolicyConfig },
  logger: Logger,
): MessageWorkflows {
  const { policy } = options;
  const starts = new Semaphore(64);
  const signal = async (messageId: string, send: () => Promise<void>) => {
    try {
      await send();
    } catch (error) {
      if (!isGone(error)) throw error;
      logger.debug({ messageId }, "signal to a finished message workflow dropped");
    }
  };
  return {
    async start(messageIds) {
      await eachLimited(messageIds, 32, (messageId) =>
        starts.run(async () => {
          try {
            await client.workflow.start("messageWorkflow", {
              workflowId: messageWorkflowId(messageId),
              taskQueue: options.taskQueue,
              args: [
                {
                  messageId,
                  policy: {
                    maxAttempts: policy.maxAttempts,
                    retryInitialMs: policy.retryInitialMs,
                    retryMaxMs: policy.retryMaxMs,
                    dispatchTimeoutMs: policy.dispatchTimeoutMs,
                    deliveryTimeoutMs: policy.deliveryTimeoutMs,
                    pushScheduleToStartMs: policy.pushScheduleToStartMs,
                    noGatewayRecheckMs: policy.noGatewayRecheckMs,
                  },
                },
              ],
              workflowIdConflictPolicy: "USE_EXISTING",
              workflowIdReusePolicy: "REJECT_DUPLICATE",
              typedSearchAttributes: [
                { key: smsMessageId, value: messageId },
                { key: smsStatus, value: "queued" },
              ],
            });
          } catch (error) {
            // A finished workflow for this message: it has already moved.
            if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
          }
        }),
      );
    },
    report: (messageId: string, report: DeviceReport) =>
      signal(messageId, () => client.workflow.getHandle(messageWorkflowId(messageId)).signal(reportSignal, report)),
    cancel: (messageId: string) =>
      signal(messageId, () => client.workflow.getHandle(messageWorkflowId(messageId)).signal(cancelSignal)),
    gatewayLost: (messageIds, gatewayId) =>
      eachLimited(messageIds, 32, (messageId) =>
        signal(messageId, () =>
          client.workflow.getHandle(messageWorkflowId(messageId)).signal(gatewayLostSignal, { gatewayId }),
        ),
      ),
    wake: (messageIds) =>
      eachLimited(messageIds, 32, (messageId) =>
        signal(messageId, () => client.workflow.getHandle(messageWorkflowId(messageId)).signal(wakeSignal)),
      ),
  };
}
