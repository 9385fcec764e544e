import { type Client, ScheduleAlreadyRunning, type ScheduleOptions, ScheduleOverlapPolicy } from "@temporalio/client";
import { gatewayHealthWorkflow } from "../../workflows/gateway-health.workflow.js";
import { messageSweeperWorkflow, resetDailyCountersWorkflow } from "../../workflows/maintenance.workflow.js";
import { otpCleanupWorkflow } from "../../workflows/otp.workflow.js";
import type { Config } from "../config.js";

/**
 * The maintenance schedules, as the original's Sidekiq cron jobs were. Each names its workflow by
 * function reference, like every other start: a renamed workflow fails to compile, not to run.
 */
function schedules(config: Config): ScheduleOptions[] {
  return [
    {
      scheduleId: "smsgw-gateway-health",
      spec: { intervals: [{ every: "1 minute" }] },
      action: {
        type: "startWorkflow",
        workflowType: gatewayHealthWorkflow,
        taskQueue: config.temporalTaskQueue,
        args: [{ heartbeatTimeoutSeconds: config.gatewayHeartbeatTimeoutSeconds }],
        workflowExecutionTimeout: "5 minutes",
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: "1 minute" },
    },
    {
      scheduleId: "smsgw-message-sweeper",
      spec: { intervals: [{ every: "30 seconds" }] },
      action: {
        type: "startWorkflow",
        workflowType: messageSweeperWorkflow,
        taskQueue: config.temporalTaskQueue,
        args: [{ olderThanSeconds: 10 }],
        workflowExecutionTimeout: "5 minutes",
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: "1 minute" },
    },
    {
      scheduleId: "smsgw-otp-cleanup",
      spec: { intervals: [{ every: "15 minutes" }] },
      action: {
        type: "startWorkflow",
        workflowType: otpCleanupWorkflow,
        taskQueue: config.temporalTaskQueue,
        args: [],
        workflowExecutionTimeout: "10 minutes",
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: "15 minutes" },
    },
    {
      scheduleId: "smsgw-reset-daily-counters",
      spec: { calendars: [{ hour: 0, minute: 0 }], timezone: config.timeZone },
      action: {
        type: "startWorkflow",
        workflowType: resetDailyCountersWorkflow,
        taskQueue: config.temporalTaskQueue,
        args: [],
        workflowExecutionTimeout: "30 minutes",
      },
      // A missed midnight (the cluster was down) still resets the counters when it comes back.
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: "1 day" },
    },
  ];
}

/** Creates the maintenance schedules, or updates them to this configuration when they exist. */
export async function ensureSchedules(client: Client, config: Config): Promise<void> {
  for (const options of schedules(config)) {
    try {
      await client.schedule.create(options);
    } catch (error) {
      if (!(error instanceof ScheduleAlreadyRunning)) throw error;
      await client.schedule.getHandle(options.scheduleId).update((previous) => ({
        ...previous,
        spec: { ...options.spec, timezone: options.spec.timezone },
        action: options.action,
        policies: { ...previous.policies, ...options.policies },
      }));
    }
  }
}
