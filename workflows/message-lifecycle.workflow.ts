import {
  condition,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
} from "@temporalio/workflow";
import type { DeviceActivities } from "../src/modules/devices/devices.activities.js";
import {
  type AttemptStart,
  type DeviceReport,
  finalStatuses,
  type MessageStatus,
} from "../src/modules/messages/message.types.js";
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

/** How long an attempt may go unanswered before its "dispatched" status is shown. */
const showDispatchedAfterMs = 2000;

/** How one attempt ended: the message's final (or lasting `sent`) state, or a reason to try again. */
type AttemptEnd = { kind: "ended"; status: MessageStatus } | { kind: "retry"; outcome: string; error: string };

/**
 * The lifecycle of one outbound message (workflow id `message/<id>`), lean by design: on the happy
 * path one workflow task picks a gateway, records the dispatch and pushes the command (one local
 * activity, eagerly started by the instance that accepted the message), and one more ends it when
 * the phone's final report arrives. The phone's reports are recorded in the database by whichever
 * instance receives them before this workflow hears of them, so it only signals final ones; when a
 * wait runs out, the database's record of the attempt decides. Failover, backoff, expiry and cancel
 * cost more, and are rare.
 */
export async function messageLifecycle({
  messageId,
  policy,
}: MessageWorkflowInput): Promise<{ status: MessageStatus }> {
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

  // Reports are kept, not cleared: an attempt looks only at those that came after it began (a phone
  // can report before the task that pushed to it has even completed).
  let since = 0;
  const begun = await db.beginMessage({ messageId });
  if (begun.plan === null) return { status: "failed" };
  const plan = begun.plan;
  if (finalStatuses.includes(plan.status)) return { status: plan.status };
  let next: AttemptStart | null = begun.first;
  let attempt = plan.attempts;
  const tried: number[] = [];
  let lastError = "no gateway could send the message";

  const end = (status: MessageStatus, deviceId?: string) => {
    upsertSearchAttributes([
      { key: smsStatus, value: status },
      ...(deviceId === undefined ? [] : [{ key: smsGatewayId, value: deviceId }]),
    ]);
    return { status };
  };

  /** Waits for the phone's final report; when none comes in time, what the database says decides. */
  async function awaitEnd(gatewayId: number, deviceId: string, at: number): Promise<AttemptEnd> {
    const mine = () => reports.slice(since).find((report) => report.gatewayId === gatewayId);
    const heard = () => mine() !== undefined || lost.has(gatewayId) || cancelled;
    // Most phones answer within moments: the "dispatched" status is shown (one search-attribute
    // update, a visibility write) only for an attempt that takes longer.
    const quickMs = Math.min(showDispatchedAfterMs, policy.dispatchTimeoutMs);
    if (!(await condition(heard, quickMs))) {
      upsertSearchAttributes([
        { key: smsStatus, value: "dispatched" },
        { key: smsGatewayId, value: deviceId },
      ]);
      await condition(heard, policy.dispatchTimeoutMs - quickMs);
    }
    let report = mine();
    if (report === undefined && cancelled) {
      await db.closeMessageAttempt({ messageId, attempt: at, outcome: "cancelled" });
      return { kind: "ended", status: "cancelled" };
    }
    if (report === undefined) {
      const state = await db.messageState({ messageId, gatewayId });
      if (state === "sent") {
        // The phone sent it: sending again could reach the person twice. Wait for delivery.
        await condition(() => mine() !== undefined, policy.deliveryTimeoutMs);
        report = mine();
        if (report === undefined) return { kind: "ended", status: "sent" };
      } else if (state !== "dispatched") {
        return { kind: "ended", status: state };
      } else {
        const disconnected = lost.has(gatewayId);
        return {
          kind: "retry",
          outcome: disconnected ? "disconnected" : "timeout",
          error: disconnected ? "the gateway disconnected" : "the gateway did not report in time",
        };
      }
    }
    if (report.status === "delivered") return { kind: "ended", status: "delivered" };
    // A failure after `sent` was recorded as final by the instance that heard it.
    if (report.final === true) return { kind: "ended", status: "failed" };
    return { kind: "retry", outcome: "failed", error: report.error ?? "the gateway could not send it" };
  }

  for (;;) {
    // A cancel that came while an attempt was being started is handled by that attempt (it closes it).
    if (cancelled && next?.kind !== "dispatched") return end("cancelled");
    const remainingMs = plan.expiresAtMs - Date.now();
    if (remainingMs <= 0) {
      await db.markMessageExpired({ messageId });
      return end("expired");
    }
    if (attempt >= policy.maxAttempts) {
      await db.markMessageFailed({ messageId, error: lastError });
      return end("failed");
    }
    if (next === null) {
      if (plan.sendAtMs !== null && plan.sendAtMs > Date.now()) {
        await condition(() => cancelled, plan.sendAtMs - Date.now());
        if (cancelled) return { status: "cancelled" };
      }
      // Cleared before looking, so that a wake arriving while the activity runs is not lost.
      woken = false;
      since = reports.length;
      next = await db.startAttempt({
        messageId,
        attempt: attempt + 1,
        preferredGatewayId: plan.preferredGatewayId,
        triedGatewayIds: tried,
        recipient: plan.recipient,
        body: plan.body,
        sealed: plan.sealed,
      });
    }
    const started: AttemptStart = next;
    next = null;
    if (started.kind === "moved_on") return { status: started.status };
    if (started.kind === "none") {
      const waitMs = started.reason === "rate_limited" ? started.retryAfterMs : policy.noGatewayRecheckMs;
      await condition(() => woken || cancelled, Math.max(1, Math.min(remainingMs, waitMs)));
      continue;
    }

    attempt = started.attempt;
    lost.delete(started.gatewayId);

    let outcome: AttemptEnd;
    try {
      if (!started.pushed) {
        // The phone is held by another instance: push on that instance's own task queue.
        await proxyActivities<DeviceActivities>({
          taskQueue: started.taskQueue,
          scheduleToStartTimeout: policy.pushScheduleToStartMs,
          startToCloseTimeout: "10 seconds",
          retry: { maximumAttempts: 1 },
        }).pushToDevice({
          gatewayId: started.gatewayId,
          messageId,
          recipient: plan.recipient,
          message: plan.body,
          sealed: plan.sealed,
        });
      }
      outcome = await awaitEnd(started.gatewayId, started.deviceId, attempt);
    } catch {
      outcome = { kind: "retry", outcome: "unreachable", error: "the gateway could not be reached" };
    }
    if (outcome.kind === "ended") return end(outcome.status, started.deviceId);

    await db.requeueMessage({
      messageId,
      gatewayId: started.gatewayId,
      attempt,
      outcome: outcome.outcome,
      error: outcome.error,
    });
    upsertSearchAttributes([{ key: smsStatus, value: "queued" }]);
    lastError = outcome.error;
    tried.push(started.gatewayId);
    await condition(() => cancelled, backoffMs(policy, attempt));
  }
}
