import {
  condition,
  patched,
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
  type OutboundStatus,
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

/** Marks the change that made a `sent` message look in the database for its delivery report. */
const readsRecordedReports = "reads-recorded-reports";

/** Marks the change that shows the status of a message that ended before its workflow's first step. */
const showsEndedOnBegin = "shows-ended-on-begin";

/** Why a held message fails when its gateway never reports (and resending is not opted into). */
const silentGatewayError = "the gateway acknowledged the message but did not report on it";

/** How one attempt ended: the message's final (or lasting `sent`) state, or a reason to try again. */
type AttemptEnd = { kind: "ended"; status: OutboundStatus } | { kind: "retry"; outcome: string; error: string };

/**
 * The lifecycle of one outbound message (workflow id `message/<id>`), lean by design: on the happy
 * path one workflow task picks a gateway, records the dispatch and pushes the command (one local
 * activity, eagerly started by the instance that accepted the message), and one more ends it when
 * the phone's final report arrives. The phone's reports are recorded in the database by whichever
 * instance receives them before this workflow hears of them, so it only signals final ones; when a
 * wait runs out, the database's record of the attempt decides. Failover, backoff, expiry and cancel
 * cost more, and are rare.
 *
 * Exactly once: a gateway that acknowledged the message holds it. Failing over asks the database to
 * put the message back in the queue, which it refuses while the attempt is acknowledged and no
 * failure was reported; the workflow then keeps waiting on that gateway (its reports come after it
 * reconnects). A step run again after a crash carries on with the attempt it had made.
 */
export async function messageLifecycle({
  messageId,
  policy,
  pushed,
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

  const end = (status: OutboundStatus, deviceId?: string) => {
    upsertSearchAttributes([
      { key: smsStatus, value: status },
      ...(deviceId === undefined ? [] : [{ key: smsGatewayId, value: deviceId }]),
    ]);
    return { status };
  };

  // Reports are kept, not cleared: an attempt looks only at those that came after it began (a phone
  // can report before the task that pushed to it has even completed).
  let since = 0;
  const begun = await db.beginMessage(pushed === undefined ? { messageId } : { messageId, pushed });
  if (begun.plan === null) return { status: "failed" };
  const plan = begun.plan;
  if (finalStatuses.includes(plan.status)) {
    // Ended before its workflow ran (the starter dispatched it and the phone reported at once): shown.
    if (!patched(showsEndedOnBegin)) return { status: plan.status };
    return end(plan.status, plan.deviceId ?? undefined);
  }
  let next: AttemptStart | null = begun.first;
  let attempt = plan.attempts;
  const tried: number[] = [];
  let lastError = "no gateway could send the message";

  /**
   * Waits for the phone's final report; when none comes in time, what the database says decides.
   * A held attempt (its gateway acknowledged it) waits without showing `dispatched` again.
   */
  async function awaitEnd(gatewayId: number, deviceId: string, at: number, held: boolean): Promise<AttemptEnd> {
    const mine = () => reports.slice(since).find((report) => report.gatewayId === gatewayId);
    const heard = () => mine() !== undefined || lost.has(gatewayId) || cancelled;
    // Most phones answer within moments: the "dispatched" status is shown (one search-attribute
    // update, a visibility write) only for an attempt that takes longer.
    const quickMs = Math.min(showDispatchedAfterMs, policy.dispatchTimeoutMs);
    if (held) await condition(heard, policy.dispatchTimeoutMs);
    else if (!(await condition(heard, quickMs))) {
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
        const recorded = await awaitDelivery(gatewayId, () => mine() !== undefined);
        if (recorded !== undefined) return { kind: "ended", status: recorded };
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

  /**
   * Waits for the delivery report of a sent message, up to the delivery timeout. Its signal may have
   * been lost (Temporal did not answer when it was recorded), so the database is asked again every
   * dispatch timeout: returns the final status recorded there, or undefined (a report came, or none).
   */
  async function awaitDelivery(gatewayId: number, heard: () => boolean): Promise<OutboundStatus | undefined> {
    if (!patched(readsRecordedReports)) {
      await condition(heard, policy.deliveryTimeoutMs);
      return undefined;
    }
    const deadline = Date.now() + policy.deliveryTimeoutMs;
    for (;;) {
      const leftMs = deadline - Date.now();
      if (leftMs <= 0 || (await condition(heard, Math.min(leftMs, policy.dispatchTimeoutMs)))) return undefined;
      const state = await db.messageState({ messageId, gatewayId });
      if (finalStatuses.includes(state)) return state;
    }
  }

  // The attempt in progress is held by its gateway (it acknowledged it, or the workflow carries on
  // with an attempt made before it lost its worker): it is waited on, not replaced, and neither the
  // expiry nor the attempt limit ends it. Since when it is held, once a failover was refused.
  let holding = plan.gatewayId !== undefined && plan.gatewayId !== null;
  let heldSince: number | undefined;

  for (;;) {
    // A cancel that came while an attempt was being started is handled by that attempt (it closes it).
    if (cancelled && next?.kind !== "dispatched") return end("cancelled");
    const remainingMs = plan.expiresAtMs - Date.now();
    if (!holding && remainingMs <= 0) {
      await db.markMessageExpired({ messageId });
      return end("expired");
    }
    if (!holding && attempt >= policy.maxAttempts) {
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
        ...(plan.app === true ? { app: true } : {}),
        ...(plan.expedited === true ? { expedited: true } : {}),
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
      outcome = await awaitEnd(started.gatewayId, started.deviceId, attempt, heldSince !== undefined);
    } catch {
      outcome = { kind: "retry", outcome: "unreachable", error: "the gateway could not be reached" };
    }
    if (outcome.kind === "ended") return end(outcome.status, started.deviceId);

    // The operator may opt into giving a silent gateway's message to another after a while.
    const resendMs = policy.resendUnreportedAfterMs ?? 0;
    const heldMs = heldSince === undefined ? 0 : Date.now() - heldSince;
    const force = resendMs > 0 && heldSince !== undefined && heldMs >= resendMs;
    const requeue = await db.requeueMessage({
      messageId,
      gatewayId: started.gatewayId,
      attempt,
      outcome: force ? "unreported" : outcome.outcome,
      error: force ? silentGatewayError : outcome.error,
      ...(force ? { force } : {}),
    });
    // Histories recorded before acknowledgements were honoured hold no answer: it was requeued.
    if (requeue !== undefined && requeue !== null && !requeue.requeued) {
      if (finalStatuses.includes(requeue.status)) return end(requeue.status, started.deviceId);
      // Its gateway holds it (or reported it sent meanwhile): wait on it again, without a new push.
      holding = true;
      heldSince ??= Date.now();
      if (resendMs === 0 && Date.now() - heldSince >= policy.deliveryTimeoutMs) {
        await db.markMessageFailed({ messageId, error: silentGatewayError });
        return end("failed", started.deviceId);
      }
      next = { ...started, pushed: true };
      continue;
    }
    holding = false;
    heldSince = undefined;
    upsertSearchAttributes([{ key: smsStatus, value: "queued" }]);
    lastError = outcome.error;
    tried.push(started.gatewayId);
    await condition(() => cancelled, backoffMs(policy, attempt));
  }
}
