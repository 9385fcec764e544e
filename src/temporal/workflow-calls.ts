import {
  type Client,
  type SignalDefinition,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type WorkflowStartOptions,
} from "@temporalio/client";

/**
 * Starts a workflow whose id is a business id, at most once: a running one is kept
 * (`USE_EXISTING`), and a finished one is not started again (`REJECT_DUPLICATE`), since the business
 * object it moved has already moved.
 */
export async function startOnce(
  client: Client,
  workflowType: string,
  options: Omit<WorkflowStartOptions, "workflowIdConflictPolicy" | "workflowIdReusePolicy">,
): Promise<void> {
  try {
    await client.workflow.start(workflowType, {
      ...options,
      workflowIdConflictPolicy: "USE_EXISTING",
      workflowIdReusePolicy: "REJECT_DUPLICATE",
    } as WorkflowStartOptions);
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
  }
}

/** Signals a workflow; a workflow that finished (or never started) no longer cares, and is skipped. */
export async function signalIfRunning<Args extends unknown[]>(
  client: Client,
  workflowId: string,
  signal: SignalDefinition<Args>,
  ...args: Args
): Promise<void> {
  try {
    await client.workflow.getHandle(workflowId).signal(signal, ...args);
  } catch (error) {
    if (!(error instanceof WorkflowNotFoundError) && !String(error).includes("already completed")) throw error;
  }
}

/** Runs `work` over `items`, at most `concurrency` at a time. */
export async function eachLimited<T>(
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
