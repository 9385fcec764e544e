import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { Client } from "@temporalio/client";
import proto from "@temporalio/proto";
import { NativeConnection, Worker } from "@temporalio/worker";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { AttemptStart, MessagePlan, OutboundStatus } from "../../src/modules/messages/index.js";
import type { RequeueResult } from "../../src/modules/messages/message.repository.js";
import { cancelSignal, type MessagePolicy, reportSignal } from "../../workflows/message.signals.js";
import { messageLifecycle } from "../../workflows/message-lifecycle.workflow.js";
import { smsStatus } from "../../workflows/search-attributes.js";

/**
 * The message lifecycle on its own: the real workflow code on the real dev server, with its
 * activities replaced by fakes that record what they were asked. Set RECORD_HISTORIES=1 to write
 * each run's history to test/fixtures/histories (the replay test checks them on every run).
 */
const policy: MessagePolicy = {
  maxAttempts: 3,
  retryInitialMs: 300,
  retryMaxMs: 1000,
  dispatchTimeoutMs: 1500,
  deliveryTimeoutMs: 1500,
  pushScheduleToStartMs: 1000,
  noGatewayRecheckMs: 200,
};

let connection: NativeConnection;
let client: Client;

beforeAll(async () => {
  connection = await NativeConnection.connect({ address: inject("temporalAddress") });
  client = new Client({ connection });
});
afterAll(async () => connection.close());

const plan = (overrides: Partial<MessagePlan> = {}): MessagePlan => ({
  status: "queued",
  recipient: "+14155550100",
  body: "hello",
  sendAtMs: null,
  expiresAtMs: Date.now() + 60_000,
  attempts: 0,
  preferredGatewayId: null,
  sealed: false,
  ...overrides,
});

const dispatched = (attempt: number, gatewayId: number, pushed = true): AttemptStart => ({
  kind: "dispatched",
  attempt,
  gatewayId,
  deviceId: `phone-${gatewayId}`,
  taskQueue: "instance-queue",
  pushed,
});

/** Fake activities: each records its calls; `attempts` are handed out in order by startAttempt. */
function fakes(options: {
  plan?: MessagePlan;
  first?: AttemptStart | null;
  attempts?: AttemptStart[];
  state?: OutboundStatus;
  /** What the database answers, in turn, when asked where the message stands (then `state`). */
  states?: OutboundStatus[];
  /** What putting the message back in the queue answers (undefined: as before acknowledgements counted). */
  requeue?: RequeueResult;
}) {
  const calls: { name: string; input: unknown; atMs: number }[] = [];
  const attempts = [...(options.attempts ?? [])];
  const states = [...(options.states ?? [])];
  const record =
    <T>(name: string, result: T) =>
    async (input: unknown) => {
      calls.push({ name, input, atMs: Date.now() });
      return result;
    };
  return {
    calls,
    activities: {
      beginMessage: record("beginMessage", { plan: options.plan ?? plan(), first: options.first ?? null }),
      startAttempt: async (input: unknown) => {
        calls.push({ name: "startAttempt", input, atMs: Date.now() });
        return attempts.shift() ?? { kind: "none", reason: "no_gateway", retryAfterMs: 0 };
      },
      messageState: async (input: unknown) => {
        calls.push({ name: "messageState", input, atMs: Date.now() });
        return states.shift() ?? options.state ?? "dispatched";
      },
      requeueMessage: record("requeueMessage", options.requeue),
      markMessageFailed: record("markMessageFailed", undefined),
      markMessageExpired: record("markMessageExpired", undefined),
      closeMessageAttempt: record("closeMessageAttempt", undefined),
    },
  };
}

/** Runs the lifecycle with `activities` until `drive` and the workflow are done; returns result, history and the final status shown. */
async function runLifecycle(
  name: string,
  activities: Record<string, (input: never) => Promise<unknown>>,
  drive: (handle: Awaited<ReturnType<Client["workflow"]["start"]>>) => Promise<void> = async () => undefined,
  deviceActivities: Record<string, (input: never) => Promise<unknown>> = {},
  input: { pushed?: number } = {},
) {
  const taskQueue = `lifecycle-${randomUUID()}`;
  const worker = await Worker.create({
    connection,
    taskQueue,
    workflowBundle: { code: inject("workflowBundleCode") },
    activities,
  });
  const deviceWorker = await Worker.create({
    connection,
    taskQueue: "instance-queue",
    workflowBundle: { code: inject("workflowBundleCode") },
    activities: deviceActivities,
  });
  const workflowId = `message/test-${name}-${randomUUID()}`;
  const outcome = await worker.runUntil(
    deviceWorker.runUntil(async () => {
      const handle = await client.workflow.start(messageLifecycle, {
        taskQueue,
        workflowId,
        args: [{ messageId: `msg_${name}`, policy, ...input }],
      });
      await drive(handle);
      return handle.result();
    }),
  );
  const handle = client.workflow.getHandle(workflowId);
  const history = await handle.fetchHistory();
  const description = await handle.describe();
  if (process.env.RECORD_HISTORIES === "1") {
    const json = await fetchHistoryJson(workflowId);
    writeFileSync(`test/fixtures/histories/message-lifecycle-${name}.json`, json);
  }
  return { outcome, history, shown: description.typedSearchAttributes.get(smsStatus) };
}

async function fetchHistoryJson(workflowId: string): Promise<string> {
  const { execFile } = await import("node:child_process");
  const { promisify } = await import("node:util");
  const { findTemporalCli } = await import("../../src/temporal/dev-server.js");
  const { loadConfig } = await import("../../src/config.js");
  const { cliCandidates, downloadDir } = loadConfig().temporalDev;
  const cli = findTemporalCli(cliCandidates, downloadDir);
  if (cli === undefined) throw new Error("the Temporal CLI the test setup started is gone");
  const { stdout } = await promisify(execFile)(cli, [
    "workflow",
    "show",
    "--address",
    inject("temporalAddress"),
    "-w",
    workflowId,
    "-o",
    "json",
  ]);
  return stdout;
}

const { EventType } = proto.temporal.api.enums.v1;
const eventTypes = (history: { events?: ({ eventType?: unknown } | null)[] | null }) =>
  (history.events ?? []).map((event) => event?.eventType);

describe("the message lifecycle workflow", () => {
  it("dispatches in its first task and ends on the phone's final report: at most two workflow tasks", async () => {
    const { calls, activities } = fakes({ first: dispatched(1, 7) });
    const { outcome, history, shown } = await runLifecycle("delivered", activities, (handle) =>
      handle.signal(reportSignal, { status: "delivered", gatewayId: 7, error: null }),
    );
    expect(outcome).toEqual({ status: "delivered" });
    expect(shown).toEqual("delivered");
    expect(calls.map((call) => call.name)).toEqual(["beginMessage"]);
    const tasks = eventTypes(history).filter((type) => type === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED);
    // Two, or one when the report came while the first task was still running.
    expect(tasks.length).toBeGreaterThanOrEqual(1);
    expect(tasks.length).toBeLessThanOrEqual(2);
    expect(eventTypes(history).length).toBeLessThanOrEqual(13);
  });

  it("shows the final status of a message its phone ended before the workflow's first step", async () => {
    // The starter dispatched it and pushed it to a phone connected there, which reported at once.
    const { calls, activities } = fakes({ plan: plan({ status: "delivered", attempts: 1, deviceId: "phone-7" }) });
    const { outcome, shown, history } = await runLifecycle(
      "ended-before-start",
      activities,
      async () => undefined,
      {},
      { pushed: 1 },
    );
    expect(outcome).toEqual({ status: "delivered" });
    expect(shown).toEqual("delivered");
    // The workflow was told which attempt the phone already has, so that it does not push it again.
    expect(calls).toMatchObject([{ name: "beginMessage", input: { messageId: "msg_ended-before-start", pushed: 1 } }]);
    const tasks = eventTypes(history).filter((type) => type === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED);
    expect(tasks).toHaveLength(1);
  });

  it("fails over to another gateway after backoff when the phone reports failed", async () => {
    const { calls, activities } = fakes({ first: dispatched(1, 7), attempts: [dispatched(2, 8)] });
    const { outcome } = await runLifecycle("failover", activities, async (handle) => {
      await handle.signal(reportSignal, { status: "failed", gatewayId: 7, error: "no signal" });
      await waitFor(() => calls.some((call) => call.name === "startAttempt"));
      await handle.signal(reportSignal, { status: "delivered", gatewayId: 8, error: null });
    });
    expect(outcome).toEqual({ status: "delivered" });
    const requeue = calls.find((call) => call.name === "requeueMessage");
    expect(requeue?.input).toMatchObject({ gatewayId: 7, attempt: 1, outcome: "failed", error: "no signal" });
    const next = calls.find((call) => call.name === "startAttempt");
    expect(next?.input).toMatchObject({ attempt: 2, triedGatewayIds: [7] });
    // The backoff (300 ms for the first retry) lies between the requeue and the next attempt.
    expect((next?.atMs ?? 0) - (requeue?.atMs ?? 0)).toBeGreaterThanOrEqual(250);
  });

  it("fails for good after the attempt limit, with the last error", async () => {
    const { calls, activities } = fakes({
      first: dispatched(1, 1),
      attempts: [dispatched(2, 2), dispatched(3, 3)],
    });
    const { outcome, shown } = await runLifecycle("failed", activities, async (handle) => {
      for (const gatewayId of [1, 2, 3]) {
        // A phone reports only once it has the message: after its attempt started.
        await waitFor(() => calls.filter((call) => call.name === "startAttempt").length >= gatewayId - 1);
        await handle.signal(reportSignal, { status: "failed", gatewayId, error: `failed on ${gatewayId}` });
      }
    });
    expect(outcome).toEqual({ status: "failed" });
    expect(shown).toEqual("failed");
    expect(calls.find((call) => call.name === "markMessageFailed")?.input).toEqual({
      messageId: "msg_failed",
      error: "failed on 3",
    });
  });

  it("expires a message no gateway took before its validity ran out", async () => {
    const { calls, activities } = fakes({ plan: plan({ expiresAtMs: Date.now() + 2500 }) });
    const { outcome, shown } = await runLifecycle("expired", activities);
    expect(outcome).toEqual({ status: "expired" });
    expect(shown).toEqual("expired");
    expect(calls.filter((call) => call.name === "startAttempt").length).toBeGreaterThan(1);
    expect(calls.at(-1)?.name).toBe("markMessageExpired");
  });

  it("ends cancelled when cancelled while the phone has it, closing the attempt", async () => {
    const { calls, activities } = fakes({ first: dispatched(1, 7) });
    const { outcome } = await runLifecycle("cancelled", activities, (handle) => handle.signal(cancelSignal));
    expect(outcome).toEqual({ status: "cancelled" });
    expect(calls.at(-1)).toMatchObject({ name: "closeMessageAttempt", input: { attempt: 1, outcome: "cancelled" } });
  });

  it("asks the database when no report came in time: a sent message waits for its late delivery report", async () => {
    const { calls, activities } = fakes({ first: dispatched(1, 7), state: "sent" });
    const { outcome } = await runLifecycle("late-report", activities, async (handle) => {
      await waitFor(() => calls.some((call) => call.name === "messageState"));
      await handle.signal(reportSignal, { status: "delivered", gatewayId: 7, error: null });
    });
    expect(outcome).toEqual({ status: "delivered" });
    expect(calls.map((call) => call.name)).not.toContain("requeueMessage");
  });

  it("pushes on the holding instance's queue when the phone is elsewhere, and fails over when that fails", async () => {
    const { calls, activities } = fakes({ first: dispatched(1, 7, false), attempts: [dispatched(2, 8)] });
    const pushes: unknown[] = [];
    const { outcome } = await runLifecycle(
      "remote-push",
      activities,
      async (handle) => {
        await waitFor(() => calls.some((call) => call.name === "startAttempt"));
        await handle.signal(reportSignal, { status: "delivered", gatewayId: 8, error: null });
      },
      {
        pushToDevice: async (input: never) => {
          pushes.push(input);
          throw new Error("the gateway is not connected to this instance");
        },
      },
    );
    expect(outcome).toEqual({ status: "delivered" });
    expect(pushes).toEqual([expect.objectContaining({ gatewayId: 7, messageId: "msg_remote-push" })]);
    expect(calls.find((call) => call.name === "requeueMessage")?.input).toMatchObject({ outcome: "unreachable" });
  });

  it("keeps waiting on a phone that acknowledged the message, and fails it when that phone never reports", async () => {
    const { calls, activities } = fakes({
      first: dispatched(1, 7),
      requeue: { requeued: false, status: "dispatched", acked: true },
    });
    const { outcome, shown } = await runLifecycle("held-silent", activities);
    expect(outcome).toEqual({ status: "failed" });
    expect(shown).toEqual("failed");
    // Never given to another gateway: no new attempt was started.
    expect(calls.filter((call) => call.name === "startAttempt")).toEqual([]);
    expect(calls.filter((call) => call.name === "requeueMessage").length).toBeGreaterThanOrEqual(2);
    expect(calls.find((call) => call.name === "markMessageFailed")?.input).toEqual({
      messageId: "msg_held-silent",
      error: "the gateway acknowledged the message but did not report on it",
    });
  });

  it("ends a sent message delivered when the database has its delivery report, though its signal was lost", async () => {
    const { calls, activities } = fakes({ first: dispatched(1, 7), states: ["sent", "delivered"] });
    const { outcome, shown } = await runLifecycle("sent-report-recorded", activities);
    expect(outcome).toEqual({ status: "delivered" });
    expect(shown).toEqual("delivered");
    expect(calls.filter((call) => call.name === "messageState")).toHaveLength(2);
  });
});

async function waitFor(probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
