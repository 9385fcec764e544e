import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker, type WorkerOptions } from "@temporalio/worker";
import type { Config } from "../config.js";
import { createDeviceActivities } from "../modules/devices/index.js";
import { createGatewayActivities, type GatewayRegistry } from "../modules/gateways/index.js";
import {
  createMessageActivities,
  type MessageLifecycle,
  type MessagesService,
  type PushCommand,
} from "../modules/messages/index.js";
import { createOtpActivities, type OneTimePasswords } from "../modules/otp/index.js";
import { createWebhookActivities, type WebhookDispatcher } from "../modules/webhooks/index.js";
import { type Tracing, temporalTracing } from "../tracing.js";
import type { TemporalLink } from "./link.js";
import { webhookTaskQueue } from "./webhook-workflows.js";
import type { FirstSteps } from "./workflow-calls.js";

/** Where the workflow code starts (TypeScript sources, or the build's JavaScript); the worker bundles it. */
export const workflowsPath = fileURLToPath(
  new URL(`../../workflows/index${extname(fileURLToPath(import.meta.url))}`, import.meta.url),
);

/** What the workers need: the connection, and the services their activities call. */
export interface WorkerServices {
  readonly config: Config;
  /** The process's connection to Temporal; a worker is made once it is connected. */
  readonly temporalLink: TemporalLink;
  readonly tracing: Tracing | undefined;
  /** This process's own task queue: pushes to the devices connected here run on it. */
  readonly instanceTaskQueue: string;
  readonly gateways: GatewayRegistry;
  readonly messages: MessagesService;
  readonly lifecycle: MessageLifecycle;
  readonly webhooks: WebhookDispatcher;
  readonly otp: OneTimePasswords;
  readonly firstSteps: FirstSteps;
  /** Hands a command to a phone connected to this process; false when it is not connected here. */
  pushHere(command: PushCommand): Promise<boolean>;
}

/** Every shared activity, bound to the same services the API uses. */
export function createActivities(deps: WorkerServices) {
  return {
    ...createGatewayActivities(deps.gateways, (gatewayId) => deps.messages.gatewayLost(gatewayId)),
    ...createMessageActivities({
      lifecycle: deps.lifecycle,
      messages: deps.messages,
      pushHere: deps.pushHere,
      firstStepDone: (messageId) => deps.firstSteps.done(messageId),
    }),
    ...createWebhookActivities(deps.webhooks),
    ...createOtpActivities({ otp: deps.otp, messages: deps.messages }),
  };
}

/**
 * A worker for one task queue on the process's one Temporal connection (each connection is another
 * set of buffers in the native core; its calls and polls share HTTP/2 streams well).
 */
async function queueWorker(
  deps: WorkerServices,
  options: Omit<WorkerOptions, "connection" | "namespace">,
): Promise<Worker> {
  const { tracing } = deps;
  const otel = tracing === undefined ? undefined : await temporalTracing();
  return Worker.create({
    connection: await deps.temporalLink.ready(),
    namespace: deps.config.temporalNamespace,
    ...options,
    // Traced: activities run in their workflow's trace, and workflow spans (made in the sandbox by the
    // interceptors bundled with the workflow code) are exported through a sink.
    ...(tracing === undefined || otel === undefined
      ? {}
      : {
          interceptors: {
            activity: [
              (ctx) => ({
                inbound: new otel.OpenTelemetryActivityInboundInterceptor(ctx),
                outbound: new otel.OpenTelemetryActivityOutboundInterceptor(ctx),
              }),
            ],
          },
          sinks: { exporter: otel.makeWorkflowExporter(tracing.processor, tracing.resource) },
        }),
  });
}

/**
 * The worker that runs workflows and shared activities on the shared task queue. It shares the
 * client's connection, so that workflows this process starts begin here at once (eager start).
 */
export async function createWorker(
  deps: WorkerServices,
  options: { workflowBundle?: WorkerOptions["workflowBundle"]; taskQueue?: string } = {},
): Promise<Worker> {
  return queueWorker(deps, {
    taskQueue: options.taskQueue ?? deps.config.temporalTaskQueue,
    activities: createActivities(deps),
    // One workflow thread: workflow tasks are short and the machine's other core runs the engine
    // and the database; each further thread is another V8 heap of cached workflows.
    workflowThreadPoolSize: 1,
    // Workflows kept in memory between their tasks; one that is evicted replays its (short) history.
    maxCachedWorkflows: deps.config.workflowCacheSize,
    // Room for every start's eager first task (the starter keeps at most WORKFLOW_START_CONCURRENCY
    // waiting for theirs) and for the tasks of workflows already running: a start that finds no free
    // slot goes through the engine's queue, and eager ones started later overtake it.
    maxConcurrentWorkflowTaskExecutions: Math.min(
      deps.config.workflowCacheSize,
      Math.max(40, 4 * deps.config.workflowStartConcurrency),
    ),
    ...(options.workflowBundle === undefined ? { workflowsPath } : { workflowBundle: options.workflowBundle }),
  });
}

/**
 * The worker for this instance's own task queue: it pushes commands to the devices connected here.
 * Every instance that serves the API runs one. Pushes only queue a frame, so many run at once.
 */
export function createDeviceWorker(deps: WorkerServices): Promise<Worker> {
  return queueWorker(deps, {
    taskQueue: deps.instanceTaskQueue,
    activities: createDeviceActivities(deps.pushHere),
    maxConcurrentActivityTaskExecutions: 500,
  });
}

/**
 * The worker that makes webhook HTTP calls, on its own task queue, so that slow or dead endpoints
 * take none of the slots message processing uses.
 */
export function createWebhookWorker(deps: WorkerServices): Promise<Worker> {
  return queueWorker(deps, {
    taskQueue: webhookTaskQueue(deps.config),
    activities: createWebhookActivities(deps.webhooks),
    maxConcurrentActivityTaskExecutions: 100,
  });
}
