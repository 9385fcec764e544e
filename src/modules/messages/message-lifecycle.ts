import { DomainError } from "../../shared/errors.js";
import type { Metrics } from "../../shared/metrics.js";
import type { SecretBox } from "../../shared/secret-box.js";
import { tuning } from "../../tuning.js";
import type { EventPayload, EventsService, MessageEventType } from "../events/index.js";
import type { Pick as GatewayPick, GatewayPicker } from "./gateway-picker.js";
import type {
  AttemptEnd,
  MessagePlan,
  MessageRepository,
  NewMessage,
  RequeueResult,
  UnacknowledgedRow,
} from "./message.repository.js";
import {
  type AttemptInput,
  type AttemptStart,
  type DeviceReport,
  type OutboundStatus,
  type PushCommand,
  routingOf,
} from "./message.types.js";

export type { MessagePlan } from "./message.repository.js";

/** A command a gateway has not acknowledged. */
export interface UnacknowledgedCommand {
  messageId: string;
  recipient: string;
  /** The text to send (a sealed one opened); a data SMS's data in base64; encrypted content as given. */
  body: string;
  priority: number;
  expiresAt: Date;
  createdAt: Date;
  /** The SIM to send from (1-3), or null for the phone's choice. */
  simNumber: number | null;
  deliveryReport: boolean;
  encrypted: boolean;
  /** For a data SMS, its port; null for text. */
  dataPort: number | null;
}

/** Plans of just-stored messages kept for their first dispatch; past this, they are read instead. */
const maxFreshPlans = tuning.freshPlans.value;

/** A plan's routing flags, as an attempt takes them. */
const planRouting = (plan: MessagePlan) => ({
  ...(plan.app === true ? { app: true } : {}),
  ...(plan.expedited === true ? { expedited: true } : {}),
});

const iso = (value: string | null) => (value === null ? undefined : new Date(value).toISOString());

// The path of a message, and where each step is decided: here, in this one module (the workflow in
// workflows/message-lifecycle.workflow.ts only waits, times out and retries, calling these methods
// through thin activities).
//
//   POST /sms/send ─ MessagesService.send: checked, stored (one insert for sends that arrive together)
//        │
//        ├─ 202 to the client ◄──────────── nothing on the accept path waits for Temporal
//        │
//        ├─ the starter: dispatchFirst ──┐  when the phone is connected to this process
//        └─ the workflow: begin ─────────┤  (whichever comes first; the other carries on with it)
//                                        ▼
//                               startAttempt: pick (GatewayPicker, one Redis call)
//                                             → dispatch (one statement, guarded by `transitions`)
//                                             → pushHere (the devices module: a frame on the phone's stream)
//                                               or the device activity on the instance holding the phone
//                                        │
//   phone ─ ack ─────────────────► acknowledge   (it holds the message: never given to another phone)
//   phone ─ report sent ─────────► report → markSent      ┐ one statement: the message (this module), its
//   phone ─ report delivered ────► report → markDelivered ┘ gateway's count and its events (those owners' steps)
//   phone ─ report failed ───────► report → markFailed (sent) or the attempt failed → requeue (fail over)
//   no report in time / phone lost ─► the workflow: requeue → startAttempt on another gateway, with backoff
//
// The state machine itself is `transitions` in message.repository.ts: every statement that moves a
// message is conditional on the statuses it may leave, so a retried step or a repeated report moves
// nothing twice.

/**
 * The state changes of a message, each one conditional on the state it leaves (the repository's
 * `transitions`), so that retried activities and repeated reports change nothing twice, with the
 * events and gateway choices that go with them. The database is the source of truth.
 */
export class MessageLifecycle {
  /** The plans of messages just stored by this process, kept until their first dispatch takes them. */
  private readonly fresh = new Map<string, MessagePlan>();

  constructor(
    private readonly repository: MessageRepository,
    private readonly picker: GatewayPicker,
    private readonly events: Pick<EventsService, "emit" | "recorded">,
    private readonly metrics: Metrics,
    /** Opens the text of a message that holds a secret: only the phone ever gets it in clear. */
    private readonly box: SecretBox,
    /**
     * How long a message a phone fetched stays that phone's once the phone is gone (the dispatch
     * timeout): a phone that fetches a message sends it without further word (the SMSGate app).
     */
    private readonly fetchHoldMs: number,
  ) {}

  /** The text to hand a phone (a sealed message's text opened). */
  async textForDevice(messageId: string): Promise<string> {
    const row = await this.repository.texts(messageId);
    if (row === undefined) throw new DomainError("not_found", "Message not found");
    return this.opened(row);
  }

  /**
   * Commands dispatched to this gateway that it has not acknowledged: sent again when it reconnects,
   * or handed to a phone that fetches them; oldest first, or newest first, at most `limit`.
   */
  async unacknowledged(
    gatewayId: number,
    options: { newestFirst?: boolean; limit?: number } = {},
  ): Promise<UnacknowledgedCommand[]> {
    const rows = await this.repository.unacknowledged(gatewayId, options.newestFirst, options.limit);
    return rows.map((row) => this.handed(row));
  }

  /**
   * What a phone that fetches its messages gets (the SMSGate app's `GET /message`): the commands it
   * has not acknowledged, each marked fetched, so that it is not given to another phone while this
   * one is connected or within the dispatch timeout after it went.
   */
  async fetch(gatewayId: number, options: { newestFirst: boolean; limit: number }): Promise<UnacknowledgedCommand[]> {
    const rows = await this.repository.fetch(gatewayId, options.newestFirst, options.limit);
    return rows.map((row) => this.handed(row));
  }

  /**
   * Records that a message was cancelled (`sms_cancelled`, an event of SMSGate's webhooks), once:
   * by its sender, or by the phone that held it.
   */
  async cancelled(row: { id: string; recipient: string; gateway_id: number | null }): Promise<void> {
    const deviceId = row.gateway_id === null ? null : ((await this.repository.deviceIdOf(row.gateway_id)) ?? null);
    await this.events.emit({
      event: "sms_cancelled",
      message_id: row.id,
      to: row.recipient,
      cancelled_at: new Date().toISOString(),
      gateway_id: deviceId,
    });
  }

  /** Messages a polling phone must be told were cancelled after it fetched them, at most `limit`. */
  async cancelling(gatewayId: number, limit: number): Promise<UnacknowledgedCommand[]> {
    return (await this.repository.cancelling(gatewayId, limit)).map((row) => this.handed(row));
  }

  /** A command as a phone is handed it (a sealed text opened). */
  private handed(row: UnacknowledgedRow): UnacknowledgedCommand {
    return {
      messageId: row.id,
      recipient: row.recipient,
      body: this.opened(row),
      priority: row.priority,
      expiresAt: new Date(row.expires_at),
      createdAt: new Date(row.created_at),
      simNumber: row.sim_number,
      deliveryReport: row.delivery_report,
      encrypted: row.encrypted,
      dataPort: row.data_port,
    };
  }

  /** A stored text as the phone sends it: `sealed_body`, opened, when `body` is a masked copy. */
  private opened(row: { body: string; sealed_body: string | null }): string {
    return row.sealed_body === null ? row.body : this.box.open(row.sealed_body);
  }

  /**
   * Remembers what a message just stored (and committed) holds, so that its first dispatch needs not
   * read it back. Bounded: a plan forgotten (or never taken: the starter dropped it) is read instead.
   */
  stored(
    messageId: string,
    message: Pick<
      NewMessage,
      | "recipient"
      | "body"
      | "sendAt"
      | "expiresAt"
      | "preferredGatewayId"
      | "sealedBody"
      | "priority"
      | "simNumber"
      | "dataPort"
      | "encrypted"
    >,
  ): void {
    if (this.fresh.size >= maxFreshPlans) this.fresh.clear();
    this.fresh.set(messageId, {
      status: "queued",
      recipient: message.recipient,
      body: message.body,
      sendAtMs: message.sendAt?.getTime() ?? null,
      expiresAtMs: message.expiresAt.getTime(),
      attempts: 0,
      preferredGatewayId: message.preferredGatewayId,
      sealed: message.sealedBody !== null,
      ...routingOf({
        priority: message.priority,
        simNumber: message.simNumber ?? null,
        dataPort: message.dataPort ?? null,
        encrypted: message.encrypted ?? false,
      }),
    });
  }

  plan(messageId: string): Promise<MessagePlan | null> {
    return this.repository.claimForWorkflow(messageId);
  }

  pick(input: {
    preferredGatewayId: number | null;
    triedGatewayIds: number[];
    app?: boolean;
    expedited?: boolean;
  }): Promise<GatewayPick> {
    return this.picker.pick(input);
  }

  /**
   * Starts attempt number `attempt`: picks a gateway, records the dispatch, and hands the command to
   * the phone at once when it is connected to this process (`pushHere`); otherwise the caller pushes
   * it on the holding instance's task queue. Run again after a crash (the attempt was already made),
   * it carries on with the gateway that attempt went to rather than give the message to another.
   */
  async startAttempt(input: AttemptInput, pushHere: (command: PushCommand) => Promise<boolean>): Promise<AttemptStart> {
    const { messageId, attempt } = input;
    const pick = await this.picker.pick(input);
    if (pick.kind === "none") return (await this.resumeMade(input, pushHere)) ?? pick;
    if (!(await this.dispatch(messageId, pick.gatewayId, attempt))) {
      return (
        (await this.resumeMade(input, pushHere)) ?? {
          kind: "moved_on",
          status: await this.state(messageId, pick.gatewayId),
        }
      );
    }
    const pushed = await pushHere(this.command(input, pick.gatewayId));
    return { ...pick, kind: "dispatched", attempt, pushed };
  }

  /**
   * The workflow's first step: loads the message's plan (which is how the sweeper learns that its
   * workflow runs) and, when it is due now, starts its first attempt, so that on the happy path the
   * whole dispatch is this one step. A gateway that holds it already (the workflow started again after
   * its worker died, or this step ran again, or the starter made the first attempt) carries on with
   * that attempt; the command goes again only if never acknowledged, and not when the starter handed
   * it to the phone itself (`pushed`).
   */
  async begin(
    messageId: string,
    pushed: number | undefined,
    pushHere: (command: PushCommand) => Promise<boolean>,
  ): Promise<{ plan: MessagePlan | null; first: AttemptStart | null }> {
    const plan = await this.plan(messageId);
    if (plan === null) return { plan, first: null };
    const input = {
      messageId,
      attempt: plan.attempts + 1,
      preferredGatewayId: plan.preferredGatewayId,
      triedGatewayIds: [],
      recipient: plan.recipient,
      body: plan.body,
      sealed: plan.sealed,
      ...planRouting(plan),
    };
    if (plan.gatewayId !== undefined && plan.gatewayId !== null) {
      const push = plan.status === "dispatched" && plan.acked !== true && plan.attempts !== pushed;
      return {
        plan,
        first: await this.resume({ ...input, attempt: plan.attempts }, plan.gatewayId, push, pushHere),
      };
    }
    const due = plan.sendAtMs === null || plan.sendAtMs <= Date.now();
    if (!due || plan.status !== "queued") return { plan, first: null };
    return { plan, first: await this.startAttempt(input, pushHere) };
  }

  /**
   * The first attempt made before the message's workflow starts, so that a phone connected here gets
   * the command without waiting for the engine: when the message is due and waits in the queue, a
   * gateway is picked, the dispatch recorded (the same guarded statement the workflow uses) and the
   * command pushed. Returns the attempt's number when the phone has it (the workflow then does not push
   * it again), else null: nothing was made, or the gateway is elsewhere (the workflow pushes it there).
   */
  async dispatchFirst(messageId: string, pushHere: (command: PushCommand) => Promise<boolean>): Promise<number | null> {
    // A message stored here a moment ago is taken as stored: the dispatch statement itself checks that
    // it still waits in the queue (not cancelled meanwhile).
    const fresh = this.fresh.get(messageId);
    this.fresh.delete(messageId);
    const plan = fresh ?? (await this.repository.peekPlan(messageId));
    const now = Date.now();
    if (plan === null || plan.status !== "queued" || plan.attempts !== 0) return null;
    if ((plan.sendAtMs !== null && plan.sendAtMs > now) || plan.expiresAtMs <= now) return null;
    const started = await this.startAttempt(
      {
        messageId,
        attempt: 1,
        preferredGatewayId: plan.preferredGatewayId,
        triedGatewayIds: [],
        recipient: plan.recipient,
        body: plan.body,
        sealed: plan.sealed,
        ...planRouting(plan),
      },
      pushHere,
    );
    return started.kind === "dispatched" && started.pushed ? 1 : null;
  }

  /** The attempt `input.attempt` carried on when it was already made (dispatched or sent), else undefined. */
  private async resumeMade(
    input: AttemptInput,
    pushHere: (command: PushCommand) => Promise<boolean>,
  ): Promise<AttemptStart | undefined> {
    const current = await this.repository.current(input.messageId);
    if (current === undefined || current.attempts !== input.attempt || current.gateway_id === null) return undefined;
    if (current.status !== "dispatched" && current.status !== "sent") return undefined;
    return this.resume(input, current.gateway_id, current.status === "dispatched" && !current.acked, pushHere);
  }

  /**
   * Carries on with the attempt in progress on `gatewayId` (a workflow that lost its worker). The
   * command is pushed again only when `push` (the phone never acknowledged it) and the phone is
   * connected; one connected nowhere gets it again when it reconnects.
   */
  async resume(
    input: AttemptInput,
    gatewayId: number,
    push: boolean,
    pushHere: (command: PushCommand) => Promise<boolean>,
  ): Promise<AttemptStart> {
    const where = await this.picker.locate(gatewayId);
    const pushed = !push || where.taskQueue === "" || (await pushHere(this.command(input, gatewayId)));
    return { kind: "dispatched", attempt: input.attempt, gatewayId, ...where, pushed };
  }

  private command(input: AttemptInput, gatewayId: number): PushCommand {
    return {
      gatewayId,
      messageId: input.messageId,
      recipient: input.recipient,
      message: input.body,
      sealed: input.sealed,
    };
  }

  /**
   * Where the message stands for the attempt on `gatewayId`: `dispatched` while that attempt has no
   * report (or the message is back in the queue), `sent` once that gateway sent it, else its final state.
   */
  async state(messageId: string, gatewayId: number): Promise<OutboundStatus> {
    const row = await this.repository.statusAndGateway(messageId);
    if (row === undefined) return "failed";
    if (row.status === "queued" || (row.status === "sent" && row.gateway_id !== gatewayId)) return "dispatched";
    return row.status;
  }

  /**
   * Assigns the message to a gateway for one attempt and records the attempt, in one statement;
   * false when the message moved on (cancelled).
   */
  async dispatch(messageId: string, gatewayId: number, attempt: number): Promise<boolean> {
    const { dispatched, ageSeconds } = await this.repository.dispatch(messageId, gatewayId, attempt);
    if (dispatched && attempt === 1) this.metrics.firstDispatched(ageSeconds);
    return dispatched;
  }

  /**
   * Ends an attempt that did not send the message and puts it back in the queue, unless its gateway
   * holds it (acknowledged, no failure reported; `force` overrides that) or it moved on.
   */
  async requeue(end: AttemptEnd, force = false): Promise<RequeueResult> {
    // A message its phone fetched stays that phone's while the phone is connected (anywhere).
    const connected = await this.picker.connected(end.gatewayId);
    const result = await this.repository.requeue(end, force, { connected, holdMs: this.fetchHoldMs });
    if (result.requeued) await this.picker.noteFailure(end.gatewayId);
    return result;
  }

  /**
   * The gateway sent the SMS, in one statement: moved, its attempt closed, counted once on the
   * gateway (the gateways module's step) and `sms_sent` recorded (the events module's), so none of it
   * can happen without the rest. Returns whether the message moved (false for a repeated or late report).
   */
  async markSent(messageId: string, gatewayId: number): Promise<boolean> {
    const moved = await this.repository.markSent(messageId, gatewayId);
    if (moved === undefined) return false;
    this.events.recorded(moved.events);
    this.metrics.messageOutcome("sent", moved.device_id);
    return true;
  }

  /**
   * The SMS reached the phone, in one statement: moved, counted (when no sent report came first),
   * and `sms_sent` (if not yet) and `sms_delivered` recorded. Returns whether the message moved, and
   * whether its workflow had loaded it by then: one that had not will find it delivered when it does
   * (the statement and the workflow's load take the row in turn), so it needs no word of the report.
   */
  async markDelivered(messageId: string, gatewayId: number): Promise<{ moved: boolean; workflowRunning: boolean }> {
    const moved = await this.repository.markDelivered(messageId, gatewayId);
    if (moved === undefined) return { moved: false, workflowRunning: true };
    this.events.recorded(moved.events);
    if (moved.was !== "sent") this.metrics.messageOutcome("sent", moved.device_id);
    this.metrics.messageOutcome("delivered", moved.device_id);
    this.metrics.delivered((Date.parse(moved.delivered_at ?? moved.sent_at) - Date.parse(moved.created_at)) / 1000);
    return { moved: true, workflowRunning: moved.workflow_started_at !== null };
  }

  /**
   * Records a device's report and says what the message's workflow must hear of it (undefined:
   * nothing, it reads the database when its wait runs out). The transition is tried first: on the
   * happy path that is the only statement. A report on a message never given to this gateway is
   * refused.
   *
   * | report    | the message is                 | becomes                                             |
   * | --------- | ------------------------------ | --------------------------------------------------- |
   * | sent      | queued, dispatched             | sent (counted, `sms_sent`)                          |
   * | delivered | queued, dispatched, sent       | delivered (counted unless sent, `sms_delivered`)    |
   * | failed    | sent, on this gateway          | failed for good: sending again could reach twice    |
   * | failed    | dispatched                     | the attempt is marked failed: it may fail over      |
   * | any       | past that, or on another phone | nothing (a repeated or late report)                 |
   */
  async report(
    gatewayId: number,
    messageId: string,
    status: "sent" | "delivered" | "failed",
    error: string | null,
  ): Promise<DeviceReport | undefined> {
    if (status === "sent") {
      if (!(await this.markSent(messageId, gatewayId))) await this.reportable(gatewayId, messageId);
      return undefined;
    }
    if (status === "delivered") {
      const { moved, workflowRunning } = await this.markDelivered(messageId, gatewayId);
      if (!moved) await this.reportable(gatewayId, messageId);
      // A workflow that has not loaded its message yet will find it delivered: no signal needed.
      return workflowRunning ? { status, gatewayId, error: null } : undefined;
    }
    const current = await this.reportable(gatewayId, messageId);
    const final = current.status === "sent" && current.gatewayId === gatewayId;
    const reason = error ?? "delivery failed";
    if (final) await this.markFailed(messageId, reason);
    else await this.repository.recordFailureReport(messageId, gatewayId, reason);
    return { status, gatewayId, error, final };
  }

  /**
   * Records that a gateway took a command. Refused when the message is not that gateway's to send
   * (it went elsewhere meanwhile, or ended): the phone is told not to send it.
   */
  async acknowledge(gatewayId: number, messageId: string): Promise<void> {
    const { held, status } = await this.repository.acknowledge(messageId, gatewayId);
    if (held) return;
    if (status === null) throw new DomainError("not_found", "Message not found");
    throw new DomainError(
      "permission_denied",
      status === "queued" || status === "dispatched"
        ? "This message is no longer assigned to this gateway: do not send it"
        : `This message is ${status}: do not send it`,
    );
  }

  /** The message a gateway reports on, refused when it does not exist or was never given to that gateway. */
  private async reportable(
    gatewayId: number,
    messageId: string,
  ): Promise<{ status: OutboundStatus; gatewayId: number | null }> {
    const row = await this.repository.forReport(messageId, gatewayId);
    if (row === undefined) throw new DomainError("not_found", "Message not found");
    if (row.gateway_id !== gatewayId && !row.tried) {
      throw new DomainError("permission_denied", "This message was not sent through this gateway");
    }
    return { status: row.status, gatewayId: row.gateway_id };
  }

  /** The message failed for good. */
  async markFailed(messageId: string, error: string): Promise<void> {
    const { moved, deviceId } = await this.repository.markFailed(messageId, error);
    if (moved) this.metrics.messageOutcome("failed", deviceId);
    await this.emitFor(messageId, ["sms_failed"]);
  }

  /** The message's validity ran out before any gateway sent it. */
  async markExpired(messageId: string): Promise<void> {
    if (await this.repository.markExpired(messageId)) this.metrics.messageOutcome("expired", null);
  }

  /** Ends the current attempt with an outcome (a cancelled or expired message's last attempt). */
  closeAttempt(messageId: string, attempt: number, outcome: string): Promise<void> {
    return this.repository.closeAttempt(messageId, attempt, outcome);
  }

  /** Emits those of `types` that the message's current state has reached; each at most once. */
  private async emitFor(messageId: string, types: MessageEventType[]): Promise<void> {
    const row = await this.repository.withGateway(messageId);
    if (row === undefined) return;
    const reached: Record<MessageEventType, boolean> = {
      sms_sent: row.sent_at !== null,
      sms_delivered: row.status === "delivered",
      sms_failed: row.status === "failed",
    };
    for (const type of types) {
      if (reached[type]) await this.events.emit(messageEvent(type, row, row.device_id));
    }
  }
}

/**
 * A message event's payload, with the keys in the order the webhooks documentation lists them:
 * event, message_id, to, message, the time, (the error), gateway_id.
 */
function messageEvent(
  type: MessageEventType,
  row: {
    id: string;
    recipient: string;
    body: string;
    sent_at: string | null;
    delivered_at: string | null;
    failed_at?: string | null;
    error_message?: string | null;
  },
  deviceId: string | null,
): EventPayload {
  const event: EventPayload = { event: type, message_id: row.id, to: row.recipient, message: row.body };
  if (type === "sms_sent") event.sent_at = iso(row.sent_at);
  if (type === "sms_delivered") event.delivered_at = iso(row.delivered_at);
  if (type === "sms_failed")
    Object.assign(event, { failed_at: iso(row.failed_at ?? null), error_message: row.error_message });
  event.gateway_id = deviceId;
  return event;
}
