import type { EntityManager } from "@mikro-orm/postgresql";
import { PreparedStatements } from "../../db/prepared.js";

/** Every event smsgw emits; webhooks subscribe to them by name. */
export const eventTypes = [
  "sms_received",
  "sms_sent",
  "sms_delivered",
  "sms_failed",
  "gateway_offline",
  "gateway_online",
] as const;

export type EventType = (typeof eventTypes)[number];

/** The outbound message events. Each happens at most once per message. */
export type MessageEventType = "sms_sent" | "sms_delivered" | "sms_failed";

/**
 * An event's payload, the body webhooks receive. Message events follow the original README's
 * example; each event's keys are listed in the README.
 */
export type EventPayload = { event: EventType; message_id?: string } & Record<string, unknown>;

/** Something that wants to hear of events once they are recorded (the webhook dispatcher). */
export type EventListener = (event: { id: number; payload: EventPayload }) => void;

/**
 * SQL for an event's `dispatched_at` as it is inserted: null when an active webhook endpoint wants
 * events of type `typeSql` (the webhook dispatcher then takes it), else already now, so that events
 * nobody subscribes to cost no further statement.
 */
export function dispatchedAtSql(typeSql: string): string {
  return `case when exists (select 1 from webhooks w where w.active and w.events @> jsonb_build_array(${typeSql}))
               then null else now() end`;
}

/** Records events durably and tells listeners. The one way events are emitted. */
export class EventsService {
  private readonly listeners: EventListener[] = [];

  /** Its statements run on every message event: prepared once per pooled connection. */
  private readonly statements: PreparedStatements;

  constructor(em: EntityManager) {
    this.statements = new PreparedStatements(em);
  }

  /** Adds a listener. It is called after the event is recorded and must not throw or block. */
  listen(listener: EventListener): void {
    this.listeners.push(listener);
  }

  /**
   * Records `payload`; an event about a message is recorded at most once per type. Returns the new
   * event's id, or undefined when the message already had one of this type.
   */
  async emit(payload: EventPayload): Promise<number | undefined> {
    const rows: { id: string; dispatched: boolean }[] = await this.statements.all(
      `insert into events (type, message_id, payload, dispatched_at) values (?, ?, ?, ${dispatchedAtSql("?::text")})
         on conflict (message_id, type) where message_id is not null do nothing
         returning id, dispatched_at is not null as dispatched`,
      [payload.event, payload.message_id ?? null, JSON.stringify(payload), payload.event],
    );
    const row = rows[0];
    if (row === undefined) return undefined;
    const id = Number(row.id);
    if (!row.dispatched) for (const listener of this.listeners) listener({ id, payload });
    return id;
  }

  /**
   * Tells listeners of events another statement recorded (a message's state change records its
   * event in the same statement).
   */
  recorded(events: readonly { id: string | number; payload: EventPayload; dispatched: boolean }[]): void {
    for (const event of events) {
      if (event.dispatched) continue;
      for (const listener of this.listeners) listener({ id: Number(event.id), payload: event.payload });
    }
  }

  /** The recorded events of a message with when each was raised, oldest first. */
  async journalOf(messageId: string): Promise<{ payload: EventPayload; createdAt: Date }[]> {
    const rows: { payload: EventPayload; created_at: string }[] = await this.statements.all(
      "select payload, created_at from events where message_id = ? order by id",
      [messageId],
    );
    return rows.map((row) => ({ payload: row.payload, createdAt: new Date(row.created_at) }));
  }

  /** Events not yet handed to webhooks and older than `olderThanSeconds` (the process died first). */
  async undispatched(olderThanSeconds: number, limit: number): Promise<{ id: number; payload: EventPayload }[]> {
    const rows: { id: string; payload: EventPayload }[] = await this.statements.all(
      `select id, payload from events where dispatched_at is null
          and created_at < now() - make_interval(secs => ?) order by id limit ?`,
      [olderThanSeconds, limit],
    );
    return rows.map((row) => ({ id: Number(row.id), payload: row.payload }));
  }

  /** Marks an event as handed to webhooks. */
  async markDispatched(eventId: number): Promise<void> {
    await this.statements.all("update events set dispatched_at = now() where id = ?", [eventId]);
  }
}
