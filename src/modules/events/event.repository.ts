import type { EntityManager } from "@mikro-orm/postgresql";
import { Sql, type Tx } from "../../db/sql.js";
import type { EventPayload } from "./event.types.js";

/** An event as recorded: its id, its payload, and whether it needs no webhook (no endpoint wants it). */
export interface RecordedEvent {
  id: string;
  payload: EventPayload;
  dispatched: boolean;
}

/** Every statement on `events`: the only code that writes it. */
export class EventRepository {
  private readonly sql: Sql;

  constructor(em: EntityManager) {
    this.sql = new Sql(em);
  }

  /**
   * Records events (in `em`'s transaction when given); an event about a message at most once per
   * type, so a repeated one records nothing. An event no active endpoint wants is recorded as already
   * dispatched, so that it costs no further statement. Returns those recorded, in order.
   */
  record(payloads: readonly EventPayload[], em?: Tx): Promise<RecordedEvent[]> {
    return this.sql.all<RecordedEvent>(
      `insert into events (type, message_id, payload, dispatched_at)
       select e.type, e.message_id, e.payload,
              case when exists (select 1 from webhooks w where w.active and w.events @> jsonb_build_array(e.type))
                   then null else now() end
         from unnest(?::varchar[], ?::varchar[], ?::json[]) with ordinality as e(type, message_id, payload, n)
        order by e.n
       on conflict (message_id, type) where message_id is not null do nothing
       returning id, payload, dispatched_at is not null as dispatched`,
      [
        payloads.map((payload) => payload.event),
        payloads.map((payload) => payload.message_id ?? null),
        payloads.map((payload) => JSON.stringify(payload)),
      ],
      em,
    );
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
