import {
  condition,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
} from "@temporalio/workflow";
import type { DeviceActivities } from "../src/modules/devices/devices.activities.js";
import { type DeviceReport, finalStatuses, type OutboundStatus } from "../src/modules/messages/message.types.js";
import type { MessageActivities } from "../src/modules/messages/messages.activities.js";
import {
  backoffMs,
  cancelSignal,
  databaseSteps,
  gatewayLostSignal,
  type MessageWorkflowInput,
  reportSignal,
  wakeSignal,
} from "./message.signals.js";
import { smsGatewayId, smsStatus } from "./search-attributes.js";

const db = proxyLocalActivities<MessageActivities>(databaseSteps);

/** How one attempt on one gateway ended. */
type AttemptEnd =
  | { kind: "final"; status: OutboundStatus }
  | { kind: "retry"; outcome: "unreachable" | "failed" | "disconnected" | "timeout"; error: string };

function showStatus(status: OutboundStatus, deviceId?: string): void {
  upsertSearchAttributes([
    { key: smsStatus, value: status },
    ...(deviceId === undefined ? [] : [{ key: smsGatewayId, value: deviceId }]),
  ]);
}

/**
 * The lifecycle of one outbound message (workflow id `message/<id>`): wait for `send_at`, pick a
 * gateway, push the command to the instance holding it, wait for the device's reports, and fail over
 * to another gateway with exponential backoff until it is delivered, fails for good, expires or is
 * cancelled. Every state change is written to the database by an activity and shown as search
 * attributes.
 */
export async function messageWorkflow({
  messageId,
  policy,
}: MessageWorkflowInput): Promise<{ status: OutboundStatus }> {
  const reports: DeviceReport[] = [];
  const lost = new Set<number>();
  let woken = false;
  let cancelled = false;
  setHandler(reportSignal, (report) => void reports.push(report));
  setHandler(gatewayLostSignal, ({ gatewayId }) => void lost.add(gatewayId));
  setHandler(wakeSignal, () => {
    woken = true;
  });
  setHandler(cancelSignal, () => {
    cancelled = true;
  });

  const plan = await db.loadMessagePlan(messageId);
  if (plan === null) return { status: "failed" };
  if (finalStatuses.includes(plan.status)) return { status: plan.status };

  if (plan.sendAtMs !== null && plan.sendAtMs > Date.now()) {
    await condition(() => cancelled, plan.sendAtMs - Date.now());
  }

  /** Waits for the device's reports on one attempt and records what they say. */
  async function awaitReports(gatewayId: number, attempt: number): Promise<AttemptEnd> {
    const mine = (status?: DeviceReport["status"]) =>
      reports.filter((report) => report.gatewayId === gatewayId && (status === undefined || report.status === status));
    const heard = await condition(
      () => mine().length > 0 || lost.has(gatewayId) || cancelled,
      policy.dispatchTimeoutMs,
    );
    if (cancelled && mine().length === 0) {
      await db.closeMessageAttempt({ messageId, attempt, outcome: "cancelled" });
      return { kind: "final", status: "cancelled" };
    }
    if (mine("delivered").length > 0) {
      await db.markMessageDelivered({ messageId, gatewayId });
      return { kind: "final", status: "delivered" };
    }
    if (mine("sent").length > 0) {
      await db.markMessageSent({ messageId, gatewayId });
      showStatus("sent");
      await condition(() => mine("delivered").length > 0 || mine("failed").length > 0, policy.deliveryTimeoutMs);
      if (mine("delivered").length > 0) {
        await db.markMessageDelivered({ messageId, gatewayId });
        return { kind: "final", status: "delivered" };
      }
      const failure = mine("failed")[0];
      if (failure !== undefined) {
        // Sent but not delivered: sending again could reach the phone twice, so it ends here.
        await db.markMessageFailed({ messageId, error: failure.error ?? "delivery failed" });
        return { kind: "final", status: "failed" };
      }
      return { kind: "final", status: "sent" };
    }
    const failure = mine("failed")[0];
    if (failure !== undefined)
      return { kind: "retry", outcome: "failed", error: failure.error ?? "the gateway could not send it" };
    if (lost.has(gatewayId)) return { kind: "retry", outcome: "disconnected", error: "the gateway disconnected" };
    if (!heard) return { kind: "retry", outcome: "timeout", error: "the gateway did not report in time" };
    return { kind: "retry", outcome: "timeout", error: "no report" };
  }

  let attempt = plan.attempts;
  const tried: number[] = [];
  let lastError = "no gateway could send the message";
  for (;;) {
    if (cancelled) return { status: "cancelled" };
    const remainingMs = plan.expiresAtMs - Date.now();
    if (remainingMs <= 0) {
      await db.markMessageExpired({ messageId });
      showStatus("expired");
      return { status: "expired" };
    }
    if (attempt >= policy.maxAttempts) {
      await db.markMessageFailed({ messageId, error: lastError });
      showStatus("failed");
      return { status: "failed" };
    }

    // Cleared before looking, so that a wake arriving while the activity runs is not lost.
    woken = false;
    const pick = await db.pickGateway({ preferredGatewayId: plan.preferredGatewayId, triedGatewayIds: tried });
    if (pick.kind === "none") {
      const waitMs = pick.reason === "rate_limited" ? pick.retryAfterMs : policy.noGatewayRecheckMs;
      await condition(() => woken || cancelled, Math.max(1, Math.min(remainingMs, waitMs)));
      continue;
    }

    attempt++;
    if (!(await db.dispatchMessage({ messageId, gatewayId: pick.gatewayId, attempt }))) {
      // The message moved on without us: it was cancelled.
      return { status: "cancelled" };
    }
    showStatus("dispatched", pick.deviceId);
    lost.delete(pick.gatewayId);
    reports.length = 0;

    const device = proxyActivities<DeviceActivities>({
      taskQueue: pick.taskQueue,
      scheduleToStartTimeout: policy.pushScheduleToStartMs,
      startToCloseTimeout: "10 seconds",
      retry: { maximumAttempts: 1 },
    });
    let end: AttemptEnd;
    try {
      await device.pushToDevice({
        gatewayId: pick.gatewayId,
        messageId,
        recipient: plan.recipient,
        message: plan.body,
        sealed: plan.sealed,
      });
      end = await awaitReports(pick.gatewayId, attempt);
    } catch {
      end = { kind: "retry", outcome: "unreachable", error: "the gateway could not be reached" };
    }
    if (end.kind === "final") {
      showStatus(end.status);
      return { status: end.status };
    }

    await db.requeueMessage({ messageId, gatewayId: pick.gatewayId, attempt, outcome: end.outcome, error: end.error });
    showStatus("queued");
    lastError = end.error;
    tried.push(pick.gatewayId);
    await condition(() => cancelled, backoffMs(policy, attempt));
  }
}
