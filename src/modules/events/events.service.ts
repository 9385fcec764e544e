import type { EntityManager } from "@mikro-orm/postgresql";

/** The outbound message events. Each happens at most once per message. */
export type MessageEventType = "sms_sent" | "sms_delivered" | "sms_failed";

/**
 * The payload of a message event, the shape webhooks deliver: the original README's example with
 * `to` for outbound messages and the event's own timestamp.
 */
export interface MessageEvent {
  event: MessageEventType;
  message_id: string;
  to: string;
  message: string;
  /** The device id of the gateway that sent it, or null when none did. */
  gateway_id: string | null;
  sent_at?: string;
  delivered_at?: string;
  failed_at?: string;
  error_message?: string | null;
}

/** Something that wants to hear of events as they are recorded (the webhook dispatcher). */
export type EventListener = (event: MessageEvent & { id: number }) => Promise<void>;

/** Records events durably, once each, and tells listeners. The one way events are emitted. */
export class EventsService {
  private readonly listeners: EventListener[] = [];

  constructor(private readonly em: EntityManager) {}

  /** Adds a listener; it is called after the event is recorded, and its failures are not the emitter's. */
  listen(listener: EventListener): void {
    this.listeners.push(listener);
  }

  /** Records `event` unless this message already had one of its type; returns whether it was new. */
  async emit(event: MessageEvent): Promise<boolean> {
    const rows: { id: string }[] = await this.em.getConnection().execute(
      `insert into events (type, message_id, payload) values (?, ?, ?)
         on conflict (message_id, type) where message_id is not null do nothing returning id`,
      [event.event, event.message_id, JSON.stringify(event)],
    );
    const row = rows[0];
    if (row === undefined) return false;
    await Promise.allSettled(this.listeners.map((listener) => listener({ ...event, id: Number(row.id) })));
    return true;
  }

  /** The recorded events of a message, oldest first. */
  async forMessage(messageId: string): Promise<MessageEvent[]> {
    const rows: { payload: MessageEvent }[] = await this.em
      .getConnection()
      .execute("select payload from events where message_id = ? order by id", [messageId]);
    return rows.map((row) => row.payload);
  }
}
