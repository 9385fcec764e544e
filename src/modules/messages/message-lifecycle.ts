import type { EntityManager } from "@mikro-orm/postgresql";
import type { EventPayload, EventsService, MessageEventType } from "../events/index.js";
import type { GatewayPicker, Pick } from "./gateway-picker.js";
import type { AttemptStart, MessageStatus, PushCommand } from "./message.types.js";

/** What a message workflow needs to know of its message. Plain JSON: it crosses into Temporal. */
export interface MessagePlan {
  status: MessageStatus;
  recipient: string;
  body: string;
  sendAtMs: number | null;
  expiresAtMs: number;
  attempts: number;
  preferredGatewayId: number | null;
  /** `body` is a masked copy: the device activity fetches the text itself right before the push. */
  sealed: boolean;
}

interface Row {
  id: string;
  recipient: string;
  body: string;
  status: MessageStatus;
  gateway_id: number | null;
  device_id: string | null;
  sent_at: string | null;
  delivered_at: string | null;
  failed_at: string | null;
  error_message: string | null;
}

const iso = (value: string | null) => (value === null ? undefined : new Date(value).toISOString());

/**
 * The state changes of a message, each one conditional on the state it leaves, so that retried
 * activities and repeated reports change nothing twice. The database is the source of truth.
 */
export class MessageLifecycle {
  constructor(
    private readonly em: EntityManager,
    private readonly picker: GatewayPicker,
    private readonly events: EventsService,
  ) {}

  private sql<T>(query: string, params: unknown[]): Promise<T[]> {
    return this.em.getConnection().execute(query, params);
  }

  async plan(messageId: string): Promise<MessagePlan | null> {
    const rows = await this.sql<{
      status: MessageStatus;
      recipient: string;
      body: string;
      send_at: string | null;
      expires_at: string;
      attempts: number;
      preferred_gateway_id: number | null;
      sealed: boolean;
    }>(
      // Loading the plan is also how the sweeper learns that this message's workflow runs.
      `update messages set workflow_started_at = coalesce(workflow_started_at, now()) where id = ?
       returning status, recipient, body, send_at, expires_at, attempts, preferred_gateway_id,
                 sealed_body is not null as sealed`,
      [messageId],
    );
    const row = rows[0];
    if (row === undefined) return null;
    return {
      status: row.status,
      recipient: row.recipient,
      body: row.body,
      sendAtMs: row.send_at === null ? null : new Date(row.send_at).getTime(),
      expiresAtMs: new Date(row.expires_at).getTime(),
      attempts: row.attempts,
      preferredGatewayId: row.preferred_gateway_id,
      sealed: row.sealed,
    };
  }

  pick(input: { preferredGatewayId: number | null; triedGatewayIds: number[] }): Promise<Pick> {
    return this.picker.pick(input);
  }

  /**
   * Starts attempt number `attempt`: picks a gateway, records the dispatch, and hands the command to
   * the phone at once when it is connected to this process (`pushHere`); otherwise the caller pushes
   * it on the holding instance's task queue.
   */
  async startAttempt(
    input: {
      messageId: string;
      attempt: number;
      preferredGatewayId: number | null;
      triedGatewayIds: number[];
      recipient: string;
      body: string;
      sealed: boolean;
    },
    pushHere: (command: PushCommand) => Promise<boolean>,
  ): Promise<AttemptStart> {
    const pick = await this.picker.pick(input);
    if (pick.kind === "none") return pick;
    const { messageId, attempt } = input;
    if (!(await this.dispatch(messageId, pick.gatewayId, attempt))) {
      return { kind: "moved_on", status: await this.state(messageId, pick.gatewayId) };
    }
    const pushed = await pushHere({
      gatewayId: pick.gatewayId,
      messageId,
      recipient: input.recipient,
      message: input.body,
      sealed: input.sealed,
    });
    return { ...pick, kind: "dispatched", attempt, pushed };
  }

  /**
   * Where the message stands for the attempt on `gatewayId`: `dispatched` while that attempt has no
   * report (or the message is back in the queue), `sent` once that gateway sent it, else its final state.
   */
  async state(messageId: string, gatewayId: number): Promise<MessageStatus> {
    const rows = await this.sql<{ status: MessageStatus; gateway_id: number | null }>(
      "select status, gateway_id from messages where id = ?",
      [messageId],
    );
    const row = rows[0];
    if (row === undefined) return "failed";
    if (row.status === "queued" || (row.status === "sent" && row.gateway_id !== gatewayId)) return "dispatched";
    return row.status;
  }

  /** Assigns the message to a gateway for one attempt; false when the message moved on (cancelled). */
  async dispatch(messageId: string, gatewayId: number, attempt: number): Promise<boolean> {
    return this.em.fork().transactional(async (em) => {
      const updated: { id: string }[] = await em.execute(
        `update messages set status = 'dispatched', gateway_id = ?, attempts = ?, acked_at = null,
                dispatched_at = now(), updated_at = now()
          where id = ? and status in ('queued', 'dispatched') returning id`,
        [gatewayId, attempt, messageId],
      );
      if (updated.length === 0) return false;
      await em.execute(
        `insert into message_attempts (message_id, attempt, gateway_id) values (?, ?, ?)
           on conflict (message_id, attempt) do update set gateway_id = excluded.gateway_id`,
        [messageId, attempt, gatewayId],
      );
      return true;
    });
  }

  /** Ends an attempt that did not send the message and puts it back in the queue. */
  async requeue(
    messageId: string,
    gatewayId: number,
    attempt: number,
    outcome: string,
    error: string | null,
  ): Promise<void> {
    await this.em.fork().transactional(async (em) => {
      await em.execute(
        `update messages set status = 'queued', gateway_id = null, error_message = ?, updated_at = now()
          where id = ? and status = 'dispatched' and gateway_id = ?`,
        [error, messageId, gatewayId],
      );
      await em.execute(
        `update message_attempts set outcome = ?, error = ?, ended_at = now()
          where message_id = ? and attempt = ? and ended_at is null`,
        [outcome, error, messageId, attempt],
      );
    });
    await this.picker.noteFailure(gatewayId);
  }

  /** The gateway sent the SMS: counted once on the gateway, `sms_sent` emitted once. */
  async markSent(messageId: string, gatewayId: number): Promise<void> {
    await this.em.fork().transactional(async (em) => {
      const moved: { id: string }[] = await em.execute(
        `update messages set status = 'sent', sent_at = now(), error_message = null, sealed_body = null, updated_at = now()
          where id = ? and gateway_id = ? and status in ('queued', 'dispatched') returning id`,
        [messageId, gatewayId],
      );
      if (moved.length > 0) await this.countSent(em, messageId, gatewayId);
    });
    await this.emitFor(messageId, ["sms_sent"]);
  }

  /** The SMS reached the phone. A delivery report without a sent report counts as both. */
  async markDelivered(messageId: string, gatewayId: number): Promise<void> {
    await this.em.fork().transactional(async (em) => {
      const moved: { was: MessageStatus }[] = await em.execute(
        // The joined row is read before the update, so `was` is the status it leaves.
        `update messages m set status = 'delivered', delivered_at = now(), sent_at = coalesce(m.sent_at, now()),
                error_message = null, sealed_body = null, updated_at = now()
           from (select id, status from messages where id = ?) old
          where m.id = old.id and m.gateway_id = ? and m.status in ('queued', 'dispatched', 'sent')
          returning old.status as was`,
        [messageId, gatewayId],
      );
      if (moved[0] !== undefined && moved[0].was !== "sent") await this.countSent(em, messageId, gatewayId);
    });
    await this.emitFor(messageId, ["sms_sent", "sms_delivered"]);
  }

  /** The message failed for good. */
  async markFailed(messageId: string, error: string): Promise<void> {
    await this.sql(
      `update messages set status = 'failed', failed_at = now(), error_message = ?, sealed_body = null, updated_at = now()
        where id = ? and status in ('queued', 'dispatched', 'sent')`,
      [error, messageId],
    );
    await this.emitFor(messageId, ["sms_failed"]);
  }

  /** The message's validity ran out before any gateway sent it. */
  async markExpired(messageId: string): Promise<void> {
    await this.sql(
      `update messages set status = 'expired', expired_at = now(), sealed_body = null, updated_at = now()
        where id = ? and status in ('queued', 'dispatched')`,
      [messageId],
    );
  }

  /** Ends the current attempt with an outcome (a cancelled or expired message's last attempt). */
  async closeAttempt(messageId: string, attempt: number, outcome: string): Promise<void> {
    await this.sql(
      "update message_attempts set outcome = ?, ended_at = now() where message_id = ? and attempt = ? and ended_at is null",
      [outcome, messageId, attempt],
    );
  }

  private async countSent(em: EntityManager, messageId: string, gatewayId: number): Promise<void> {
    await em.execute(
      `update gateways set messages_sent_today = messages_sent_today + 1,
              total_messages_sent = total_messages_sent + 1, updated_at = now() where id = ?`,
      [gatewayId],
    );
    await em.execute(
      `update message_attempts set outcome = 'sent', ended_at = coalesce(ended_at, now())
        where message_id = ? and gateway_id = ? and outcome is null`,
      [messageId, gatewayId],
    );
  }

  /** Emits those of `types` that the message's current state has reached; each at most once. */
  private async emitFor(messageId: string, types: MessageEventType[]): Promise<void> {
    const rows = await this.sql<Row>(
      `select m.id, m.recipient, m.body, m.status, m.gateway_id, g.device_id, m.sent_at, m.delivered_at, m.failed_at, m.error_message
         from messages m left join gateways g on g.id = m.gateway_id where m.id = ?`,
      [messageId],
    );
    const row = rows[0];
    if (row === undefined) return;
    const reached: Record<MessageEventType, boolean> = {
      sms_sent: row.sent_at !== null,
      sms_delivered: row.status === "delivered",
      sms_failed: row.status === "failed",
    };
    for (const type of types) {
      if (!reached[type]) continue;
      // Keys in the order the README documents: event, message_id, to, message, the time, (error), gateway_id.
      const event: EventPayload = { event: type, message_id: row.id, to: row.recipient, message: row.body };
      if (type === "sms_sent") event.sent_at = iso(row.sent_at);
      if (type === "sms_delivered") event.delivered_at = iso(row.delivered_at);
      if (type === "sms_failed")
        Object.assign(event, { failed_at: iso(row.failed_at), error_message: row.error_message });
      event.gateway_id = row.device_id;
      await this.events.emit(event);
    }
  }
}
