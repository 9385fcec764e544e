import type { EntityManager } from "@mikro-orm/postgresql";
import { Sql } from "../../db/sql.js";
import type { EventPayload } from "./event.types.js";

/** An event as recorded: its id, its payload, and whether it needs no webhook (no endpoint wants it). */
export interface RecordedEvent {
  id: string;
  payload: EventPayload;
  dispatched: boolean;
}

/**
 * The events' part of a statement that another module writes, so that a change and its events are
 * one statement (one round trip, nothing half-done): the body of a CTE that records the events of
 * `source` (a from-item with the columns `n`, `type`, `message_id` and `payload` json, recorded in
 * the order of `n`). An event about a message is recorded at most once per type; one that no active
 * endpoint wants is recorded as already dispatched, so that it costs no further statement. Returns
 * `id`, `payload` and `dispatched` (no webhook needed) of those recorded.
 */
export function recordingEvents(source: string): string {
  return `insert into events (type, message_id, payload, dispatched_at)
       select e.type, e.message_id, e.payload,
              case when exists (select 1 from webhooks w where w.active and w.events @> jsonb_build_array(e.type))
                   then null else now() end
         from ${source} e order by e.n
       on conflict (message_id, type) where message_id is not null do nothing
       returning id, payload, dispatched_at is not null as dispatched`;
}

/** Events given as parameters: their types, message ids and payloads, each as one array. */
const recordSql = recordingEvents(
  "(select * from unnest(?::varchar[], ?::varchar[], ?::json[]) with ordinality as u(type, message_id, payload, n))",
);

/** Every statement on `events`: the only code that writes it. */
export class EventRepository {
  private readonly sql: Sql;

  constructor(em: EntityManager) {
    this.sql = new Sql(em);
  }

  /**
   * Records events; an event about a message at most once per type, so a repeated one records
   * nothing. Returns those recorded, in order.
   */
  record(payloads: readonly EventPayload[]): Promise<RecordedEvent[]> {
    return this.sql.all<RecordedEvent>(recordSql, [
      payloads.map((payload) => payload.event),
      payloads.map((payload) => payload.message_id ?? null),
      payloads.map((payload) => JSON.stringify(payload)),
    ]);
  }

  /** The recorded events of a message with when each was raised, oldest first. */
  journalOf(messageId: string): Promise<{ payload: EventPayload; created_at: string }[]> {
    return this.sql.all("select payload, created_at from events where message_id = ? order by id", [messageId]);
  }

  /** Events not yet handed to webhooks and older than `olderThanSeconds` (the process died first). */
  undispatched(olderThanSeconds: number, limit: number): Promise<{ id: string; payload: EventPayload }[]> {
    return this.sql.all(
      `select id, payload from events where dispatched_at is null
          and created_at < now() - make_interval(secs => ?) order by id limit ?`,
      [olderThanSeconds, limit],
    );
  }

  /** Marks an event as handed to webhooks. */
  async markDispatched(eventId: number): Promise<void> {
    await this.sql.all("update events set dispatched_at = now() where id = ?", [eventId]);
  }
}
