import type { EntityManager } from "@mikro-orm/postgresql";
import { dispatchedAtSql, type EventPayload, type EventsService, type MessageEventType } from "../events/index.js";
import type { GatewayPicker, Pick } from "./gateway-picker.js";
import type { AttemptInput, AttemptStart, MessageStatus, PushCommand } from "./message.types.js";

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

/** A timestamp column as JavaScript's `toISOString()` writes it (UTC, milliseconds, `Z`). */
const isoSql = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * A message event's payload built by PostgreSQL from the moved message `m` and its gateway `g`,
 * with the keys in the order the README documents (the same as `emitFor` writes them).
 */
function eventJson(type: "sms_sent" | "sms_delivered"): string {
  const time = type === "sms_sent" ? "sent_at" : "delivered_at";
  return `json_build_object('event', '${type}', 'message_id', m.id, 'to', m.recipient, 'message', m.body,
            '${time}', ${isoSql(`m.${time}`)}, 'gateway_id', g.device_id)`;
}

/**
 * CTEs that count a sent SMS once on its gateway (\`g\`, with its device id) and close its attempt,
 * for the messages in \`moved\`.
 */
function countedSql(moved: string): string {
  return `g as (
         update gateways set messages_sent_today = messages_sent_today + 1,
                total_messages_sent = total_messages_sent + 1, updated_at = now()
          where id = (select gateway_id from ${moved}) returning id, device_id),
       a as (
         update message_attempts set outcome = 'sent', ended_at = coalesce(ended_at, now())
          where message_id = (select id from ${moved}) and gateway_id = (select gateway_id from ${moved})
            and outcome is null)`;
}

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
  async startAttempt(input: AttemptInput, pushHere: (command: PushCommand) => Promise<boolean>): Promise<AttemptStart> {
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

  /**
   * Assigns the message to a gateway for one attempt and records the attempt, in one statement;
   * false when the message moved on (cancelled).
   */
  async dispatch(messageId: string, gatewayId: number, attempt: number): Promise<boolean> {
    const rows = await this.sql<{ message_id: string }>(
      `with m as (
         update messages set status = 'dispatched', gateway_id = ?, attempts = ?, acked_at = null,
                dispatched_at = now(), updated_at = now()
          where id = ? and status in ('queued', 'dispatched') returning id)
       insert into message_attempts (message_id, attempt, gateway_id)
       select id, ?, ? from m
       on conflict (message_id, attempt) do update set gateway_id = excluded.gateway_id
       returning message_id`,
      [gatewayId, attempt, messageId, attempt, gatewayId],
    );
    return rows.length > 0;
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

  /**
   * The gateway sent the SMS: moved, counted once on the gateway, its attempt closed and `sms_sent`
   * recorded, all in one statement (so none of it can happen without the rest). Returns whether the
   * message moved (false for a repeated or late report).
   */
  async markSent(messageId: string, gatewayId: number): Promise<boolean> {
    const events = await this.sql<{ id: string; payload: EventPayload; dispatched: boolean }>(
      `with m as (
         update messages set status = 'sent', sent_at = now(), error_message = null, sealed_body = null,
                updated_at = now()
          where id = ? and gateway_id = ? and status in ('queued', 'dispatched')
         returning id, recipient, body, sent_at, gateway_id),
       ${countedSql("m")}
       insert into events (type, message_id, payload, dispatched_at)
       select 'sms_sent', m.id, ${eventJson("sms_sent")}, ${dispatchedAtSql("'sms_sent'::text")} from m left join g on true
       on conflict (message_id, type) where message_id is not null do nothing
       returning id, payload, dispatched_at is not null as dispatched`,
      [messageId, gatewayId],
    );
    this.events.recorded(events);
    return events.length > 0;
  }

  /**
   * The SMS reached the phone, in one statement: moved, counted (when no sent report came first),
   * and `sms_sent` (if not yet) and `sms_delivered` recorded. Returns whether the message moved.
   */
  async markDelivered(messageId: string, gatewayId: number): Promise<boolean> {
    const events = await this.sql<{ id: string; payload: EventPayload; type: MessageEventType; dispatched: boolean }>(
      // The joined row is read before the update, so `was` is the status it leaves.
      `with m as (
         update messages m set status = 'delivered', delivered_at = now(), sent_at = coalesce(m.sent_at, now()),
                error_message = null, sealed_body = null, updated_at = now()
           from (select id, status from messages where id = ?) old
          where m.id = old.id and m.gateway_id = ? and m.status in ('queued', 'dispatched', 'sent')
         returning m.id, m.recipient, m.body, m.sent_at, m.delivered_at, m.gateway_id, old.status as was),
       unsent as (select * from m where was <> 'sent'),
       ${countedSql("unsent")}
       insert into events (type, message_id, payload, dispatched_at)
       select e.type, m.id, e.payload, ${dispatchedAtSql("e.type")}
         from m left join gateways g on g.id = m.gateway_id
        cross join lateral (values ('sms_sent', ${eventJson("sms_sent")}), ('sms_delivered', ${eventJson("sms_delivered")})) e(type, payload)
       on conflict (message_id, type) where message_id is not null do nothing
       returning id, payload, type, dispatched_at is not null as dispatched`,
      [messageId, gatewayId],
    );
    this.events.recorded(events);
    return events.some((event) => event.type === "sms_delivered");
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
