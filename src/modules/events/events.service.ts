import type { EventRepository, RecordedEvent } from "./event.repository.js";
import type { EventPayload } from "./event.types.js";

export type { RecordedEvent } from "./event.repository.js";

/** Something that wants to hear of events once they are recorded (the webhook dispatcher). */
export type EventListener = (event: { id: number; payload: EventPayload }) => void;

/** Records events durably and tells listeners. The one way events are emitted. */
export class EventsService {
  private readonly listeners: EventListener[] = [];

  constructor(private readonly repository: EventRepository) {}

  /** Adds a listener. It is called after the event is recorded and must not throw or block. */
  listen(listener: EventListener): void {
    this.listeners.push(listener);
  }

  /**
   * Records `payload`; an event about a message is recorded at most once per type. Returns the new
   * event's id, or undefined when the message already had one of this type.
   */
  async emit(payload: EventPayload): Promise<number | undefined> {
    const [event] = await this.repository.record([payload]);
    if (event === undefined) return undefined;
    this.recorded([event]);
    return Number(event.id);
  }

  /** Records several events in one statement (none about a message: those are `emit`'s), and tells listeners. */
  async emitMany(payloads: readonly EventPayload[]): Promise<void> {
    if (payloads.length === 0) return;
    this.recorded(await this.repository.record(payloads));
  }

  /**
   * Tells listeners of events recorded by another module's statement (`recordingEvents`), once it has
   * committed.
   */
  recorded(events: readonly RecordedEvent[]): void {
    for (const event of events) {
      if (event.dispatched) continue;
      for (const listener of this.listeners) listener({ id: Number(event.id), payload: event.payload });
    }
  }

  /** The recorded events of a message with when each was raised, oldest first. */
  async journalOf(messageId: string): Promise<{ payload: EventPayload; createdAt: Date }[]> {
    const rows = await this.repository.journalOf(messageId);
    return rows.map((row) => ({ payload: row.payload, createdAt: new Date(row.created_at) }));
  }

  /** Events not yet handed to webhooks and older than `olderThanSeconds` (the process died first). */
  async undispatched(olderThanSeconds: number, limit: number): Promise<{ id: number; payload: EventPayload }[]> {
    const rows = await this.repository.undispatched(olderThanSeconds, limit);
    return rows.map((row) => ({ id: Number(row.id), payload: row.payload }));
  }

  /** Marks an event as handed to webhooks. */
  async markDispatched(eventId: number): Promise<void> {
    await this.repository.markDispatched(eventId);
  }
}
