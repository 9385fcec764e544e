import { fileURLToPath } from "node:url";
import { NativeConnection, Worker, type WorkerOptions } from "@temporalio/worker";
import type { Deps } from "../deps.js";
import { createGatewayActivities } from "../modules/gateways/index.js";

/** Where the workflow code starts; the worker bundles it. */
export const workflowsPath = fileURLToPath(new URL("../../workflows/index.ts", import.meta.url));

/** Every activity, bound to the same services the API uses. */
export function createActivities(deps: Deps) {
  return { ...createGatewayActivities(deps.gateways) };
}

/** A worker for this instance's task queue, not yet running. Close `connection` after it stops. */
export async function createWorker(
  deps: Deps,
  options: { workflowBundle?: WorkerOptions["workflowBundle"]; taskQueue?: string } = {},
): Promise<{ worker: Worker; connection: NativeConnection }> {
  const connection = await NativeConnection.connect({ address: deps.temporalAddress });
  try {
    const worker = await Worker.create({
      connection,
      namespace: deps.config.temporalNamespace,
      taskQueue: options.taskQueue ?? deps.config.temporalTaskQueue,
      activities: createActivities(deps),
      ...(options.workflowBundle === undefined ? { workflowsPath } : { workflowBundle: options.workflowBundle }),
    });
    return { worker, connection };
  } catch (error) {
    await connection.close();
    throw error;
  }
}
