import type { EntityManager } from "@mikro-orm/postgresql";
import { Sql } from "../../db/sql.js";
import type { EventPayload, EventType } from "../events/index.js";

/** A row of `webhooks`. */
export interface WebhookRow {
  id: number;
  url: string;
  events: EventType[];
  secret_encrypted: string | null;
  active: boolean;
  created_at: string;
  updated_at: string;
  dialect: "smsgw" | "smsgate";
  client_key_id: number | null;
  ext_id: string | null;
  device_id: string | null;
}

/** A webhook of SMSGate's API to store: its owner, its id, its phone, its endpoint and event. */
export interface SmsGateWebhookInput {
  clientKeyId: number;
  extId: string;
  deviceId: string | null;
  url: string;
  events: EventType[];
  secret: string;
}

/** A row of `webhook_deliveries`, as listed. */
export interface DeliveryRow {
  id: string;
  event: string;
  status: "pending" | "succeeded" | "failed";
  created_at: string;
  completed_at: string | null;
}

/** A row of `webhook_attempts`. */
export interface AttemptRow {
  delivery_id: string;
  attempt: number;
  started_at: string;
  status_code: number | null;
  duration_ms: number;
  error: string | null;
}

/**
 * Whether an SMSGate webhook `w` wants event `e`: one of its phone's, when it names one; for a
 * message's events, one of a message its credential sent (an admin key's: any); for a phone's
 * events (what it received, its pings, MMS and starts), one of its account's phones when its
 * credential is an SMSGate account, else any phone's (smsgw's own keys see the whole fleet). An
 * event for one credential only (`only_key_id`: an inbox export it asked for) goes to its webhooks.
 */
const smsGateWants = `(w.device_id is null or w.device_id = e.payload->>'gateway_id')
  and (exists (select 1 from api_keys k where k.id = w.client_key_id and k.scope = 'admin')
       or (e.type in ('sms_received', 'sms_data_received', 'system_ping', 'mms_received', 'mms_downloaded', 'app_started')
           and (not exists (select 1 from api_keys k where k.id = w.client_key_id and k.login is not null)
                or exists (select 1 from gateways g where g.device_id = e.payload->>'gateway_id'
                                                      and g.account_key_id = w.client_key_id)))
       or exists (select 1 from messages m where m.id = e.message_id and m.client_key_id = w.client_key_id))`;

/** Every statement on `webhooks`, `webhook_deliveries` and `webhook_attempts`: the only code that writes them. */
export class WebhookRepository {
  private readonly sql: Sql;

  constructor(em: EntityManager) {
    this.sql = new Sql(em);
  }

  insert(url: string, events: EventType[], secret: string | null, active: boolean): Promise<WebhookRow | undefined> {
    return this.sql.one(
      "insert into webhooks (url, events, secret_encrypted, active) values (?, ?, ?, ?) returning *",
      [url, JSON.stringify(events), secret, active],
    );
  }

  /**
   * Stores an SMSGate webhook, replacing the one of the same id this credential has (SMSGate's POST
   * upserts by id).
   */
  upsertSmsGate(input: SmsGateWebhookInput): Promise<WebhookRow | undefined> {
    return this.sql.one(
      `insert into webhooks (url, events, secret_encrypted, active, dialect, client_key_id, ext_id, device_id)
       values (?, ?, ?, true, 'smsgate', ?, ?, ?)
       on conflict (client_key_id, ext_id) where ext_id is not null
       do update set url = excluded.url, events = excluded.events, secret_encrypted = excluded.secret_encrypted,
                     device_id = excluded.device_id, active = true, updated_at = now()
       returning *`,
      [input.url, JSON.stringify(input.events), input.secret, input.clientKeyId, input.extId, input.deviceId],
    );
  }

  /** A credential's SMSGate webhooks, oldest first. */
  listSmsGate(clientKeyId: number): Promise<WebhookRow[]> {
    return this.sql.all("select * from webhooks where dialect = 'smsgate' and client_key_id = ? order by id", [
      clientKeyId,
    ]);
  }

  /** Deletes a credential's SMSGate webhook by its id; whether it existed. */
  async deleteSmsGate(clientKeyId: number, extId: string): Promise<boolean> {
    const rows = await this.sql.all(
      "delete from webhooks where dialect = 'smsgate' and client_key_id = ? and ext_id = ? returning id",
      [clientKeyId, extId],
    );
    return rows.length > 0;
  }

  /** Signs a credential's SMSGate webhooks with its (new) key from now on. */
  async resignSmsGate(clientKeyId: number, secret: string): Promise<void> {
    await this.sql.all(
      "update webhooks set secret_encrypted = ?, updated_at = now() where dialect = 'smsgate' and client_key_id = ? returning id",
      [secret, clientKeyId],
    );
  }

  list(): Promise<WebhookRow[]> {
    return this.sql.all("select * from webhooks order by id");
  }

  find(id: number): Promise<WebhookRow | undefined> {
    return this.sql.one("select * from webhooks where id = ?", [id]);
  }

  update(
    id: number,
    change: { url: string; events: EventType[]; secret: string | null; active: boolean },
  ): Promise<WebhookRow | undefined> {
    return this.sql.one(
      "update webhooks set url = ?, events = ?, secret_encrypted = ?, active = ?, updated_at = now() where id = ? returning *",
      [change.url, JSON.stringify(change.events), change.secret, change.active, id],
    );
  }

  /** Deletes an endpoint and its deliveries; whether it existed. */
  async delete(id: number): Promise<boolean> {
    return (await this.sql.all("delete from webhooks where id = ? returning id", [id])).length > 0;
  }

  /** The latest deliveries to an endpoint, newest first. */
  deliveries(webhookId: number, limit: number): Promise<DeliveryRow[]> {
    return this.sql.all(
      "select id, event, status, created_at, completed_at from webhook_deliveries where webhook_id = ? order by created_at desc, id desc limit ?",
      [webhookId, limit],
    );
  }

  /** Every delivery of a message's events, oldest first, with its endpoint. */
  deliveriesOfMessage(messageId: string): Promise<(DeliveryRow & { webhook_id: number; url: string })[]> {
    return this.sql.all(
      `select d.id, d.event, d.status, d.created_at, d.completed_at, d.webhook_id, w.url
         from events e join webhook_deliveries d on d.event_id = e.id join webhooks w on w.id = d.webhook_id
        where e.message_id = ? order by d.created_at, d.id`,
      [messageId],
    );
  }

  /** The attempts of these deliveries, by attempt number. */
  attempts(deliveryIds: readonly string[]): Promise<AttemptRow[]> {
    return this.sql.all(
      `select delivery_id, attempt, started_at, status_code, duration_ms, error from webhook_attempts
        where delivery_id = any(?::varchar[]) order by attempt`,
      [deliveryIds],
    );
  }

  /**
   * Creates one delivery per active endpoint that wants an event of `type`, and returns those
   * created with any still pending from an earlier try (none: no endpoint wants it).
   */
  createDeliveries(eventId: number, type: string): Promise<{ id: string }[]> {
    return this.sql.all(
      `with created as (
         insert into webhook_deliveries (id, webhook_id, event_id, event)
         select 'whd_' || substr(md5(random()::text || clock_timestamp()::text || w.id::text), 1, 24), w.id, ?, ?
           from webhooks w join events e on e.id = ?
          where w.active and w.events @> ?::jsonb and (w.dialect = 'smsgw' or (${smsGateWants}))
            and (e.payload->>'only_key_id' is null
                 or (w.dialect <> 'smsgw' and w.client_key_id::text = e.payload->>'only_key_id'))
         on conflict (webhook_id, event_id) do nothing returning id)
       select id from created
       union all select id from webhook_deliveries where event_id = ? and status = 'pending'`,
      [eventId, type, eventId, JSON.stringify([type]), eventId],
    );
  }

  /** A delivery with its event's payload. */
  delivery(
    deliveryId: string,
  ): Promise<{ event: string; payload: EventPayload; webhook_id: number; status: string } | undefined> {
    return this.sql.one(
      "select d.event, e.payload, d.webhook_id, d.status from webhook_deliveries d join events e on e.id = d.event_id where d.id = ?",
      [deliveryId],
    );
  }

  /** Records attempt number `attempt` of a delivery (once, however often it is recorded). */
  async recordAttempt(
    deliveryId: string,
    attempt: number,
    startedAt: Date,
    result: { statusCode: number | null; durationMs: number; error: string | null },
  ): Promise<void> {
    await this.sql.all(
      `with recorded as (
         insert into webhook_attempts (delivery_id, attempt, started_at, status_code, duration_ms, error)
         values (?, ?, ?, ?, ?, ?) on conflict (delivery_id, attempt) do nothing)
       update webhook_deliveries set attempts = greatest(attempts, ?) where id = ?`,
      [deliveryId, attempt, startedAt, result.statusCode, result.durationMs, result.error, attempt, deliveryId],
    );
  }

  /** Ends a pending delivery; whether it was pending. */
  async finish(deliveryId: string, status: "succeeded" | "failed"): Promise<boolean> {
    const ended = await this.sql.all(
      "update webhook_deliveries set status = ?, completed_at = now() where id = ? and status = 'pending' returning id",
      [status, deliveryId],
    );
    return ended.length > 0;
  }
}
