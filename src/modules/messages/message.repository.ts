import type { EntityManager } from "@mikro-orm/postgresql";
import { Sql, type Tx } from "../../db/sql.js";
import { Batcher } from "../../shared/batcher.js";
import { tuning } from "../../tuning.js";
import { type RecordedEvent, recordingEvents } from "../events/index.js";
import { counting } from "../gateways/index.js";
import { type MessageView, type OutboundStatus, routingOf } from "./message.types.js";

/**
 * The state machine of a message: for each transition, the statuses it may leave. Every statement
 * that moves a message is conditional on these, so a retried activity or a repeated report moves
 * nothing twice.
 */
export const transitions = {
  /** Given to a gateway for a new attempt (never while another gateway holds it). */
  dispatch: ["queued"],
  /**
   * Back to the queue after an attempt that did not send it: only while its gateway has not
   * acknowledged it, or after that gateway reported that it failed to send it.
   */
  requeue: ["dispatched"],
  /** A gateway reported it sent. */
  sent: ["queued", "dispatched"],
  /** A gateway reported it delivered. */
  delivered: ["queued", "dispatched", "sent"],
  /** Failed for good. */
  failed: ["queued", "dispatched", "sent"],
  /** Its validity ran out before a gateway sent it. */
  expired: ["queued", "dispatched"],
  /** Cancelled by its sender before a gateway sent it. */
  cancel: ["queued", "dispatched"],
} as const satisfies Record<string, readonly OutboundStatus[]>;

/** `status in (...)` for a transition's allowed sources, on the column `column`. */
function leaves(transition: keyof typeof transitions, column = "status"): string {
  return `${column} in (${transitions[transition].map((status) => `'${status}'`).join(", ")})`;
}

/** An active online gateway the picker may choose; `tier` numbers the groups of equals, best first. */
export interface GatewayCandidate {
  id: number;
  device_id: string;
  tier: number;
}

/**
 * The candidates of `source` (columns `id`, `device_id`, `priority`, `preferred`, `n`) with their
 * `tier`: groups of equals (same preference, priority and messages in flight), best first.
 */
function rankedCandidates(source: string): string {
  return `select id, device_id, dense_rank() over (order by preferred desc nulls last, priority desc, load)::int as tier
            from (select c.*, (select count(*) from messages m where m.gateway_id = c.id and m.status = 'dispatched') as load
                    from (${source}) c) ranked`;
}

/**
 * The account a message was sent by (`acct`: one row when its key is an SMSGate account, a client
 * key with a login; none otherwise). Its one parameter is the message's id (null: none).
 */
const accountScope = `acct as (select k.id from messages m join api_keys k on k.id = m.client_key_id
                                where m.id = ?::text and k.login is not null)`;

/** Whether gateway `g` may take the message of `accountScope`: an account's only its own. */
const ofAccount = (g: string) => `(not exists (select 1 from acct) or ${g}.account_key_id = (select id from acct))`;

/** A row of `messages`, as PostgreSQL returns it. */
export interface MessageRow {
  id: string;
  recipient: string;
  body: string;
  status: OutboundStatus;
  client_key_id: number | null;
  gateway_id: number | null;
  attempts: number;
  created_at: string;
  sent_at: string | null;
  delivered_at: string | null;
  failed_at: string | null;
  error_message: string | null;
  request_digest: string | null;
}

/** What a list of messages is filtered by; `clientKeyId` null: every application's. */
export interface MessageListFilters {
  clientKeyId: number | null;
  id?: string;
  status?: OutboundStatus;
  gatewayDeviceId?: string;
  recipient?: string;
  since?: Date;
  until?: Date;
  after?: { createdAt: string; id: string };
  limit: number;
}

/** A message as listed: the stored row, its priority, its gateway's device id, and the exact time its page is keyed on. */
export interface ListedMessageRow extends MessageRow {
  priority: number;
  cursor_at: string;
  device_id: string | null;
}

/** The statement of one page of messages (exported so that a test can check its plan). */
export function listQuery(filters: MessageListFilters): { sql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (clause: string, value: unknown) => {
    where.push(clause);
    params.push(value);
  };
  if (filters.clientKeyId !== null) add("m.client_key_id = ?", filters.clientKeyId);
  if (filters.id !== undefined) add("m.id = ?", filters.id);
  if (filters.status !== undefined) add("m.status = ?", filters.status);
  if (filters.gatewayDeviceId !== undefined)
    add("m.gateway_id = (select id from gateways where device_id = ?)", filters.gatewayDeviceId);
  if (filters.recipient !== undefined) add("m.recipient = ?", filters.recipient);
  if (filters.since !== undefined) add("m.created_at >= ?", filters.since);
  if (filters.until !== undefined) add("m.created_at < ?", filters.until);
  if (filters.after !== undefined) {
    where.push("(m.created_at, m.id) < (?::timestamptz, ?)");
    params.push(filters.after.createdAt, filters.after.id);
  }
  return {
    sql: `select m.id, m.recipient, m.body, m.status, m.client_key_id, m.gateway_id, m.attempts, m.created_at,
                 m.sent_at, m.delivered_at, m.failed_at, m.error_message, m.request_digest,
                 m.priority, m.created_at::text as cursor_at, g.device_id
            from messages m left join gateways g on g.id = m.gateway_id
           ${where.length === 0 ? "" : `where ${where.join(" and ")}`}
           order by m.created_at desc, m.id desc limit ?`,
    params: [...params, filters.limit],
  };
}

const date = (value: string | null): Date | null => (value === null ? null : new Date(value));

/** The one mapper from a stored message to what the API answers. */
export function toView(row: MessageRow): MessageView {
  return {
    id: row.id,
    recipient: row.recipient,
    body: row.body,
    status: row.status,
    clientKeyId: row.client_key_id,
    gatewayId: row.gateway_id,
    attempts: row.attempts,
    createdAt: new Date(row.created_at),
    sentAt: date(row.sent_at),
    deliveredAt: date(row.delivered_at),
    failedAt: date(row.failed_at),
    errorMessage: row.error_message,
  };
}

/** A message to store, checked and normalised. */
export interface NewMessage {
  id: string;
  clientKeyId: number;
  recipient: string;
  body: string;
  priority: number;
  sendAt: Date | null;
  expiresAt: Date;
  preferredGatewayId: number | null;
  metadata: string;
  idempotencyKey: string | null;
  digest: string;
  /** The text itself, encrypted, when `body` is a masked copy (an OTP's SMS). */
  sealedBody: string | null;
  /** The trace it was accepted in (W3C traceparent), when tracing is on. */
  traceContext?: string | null;
  /** What SMSGate's API adds (absent: a plain text SMS, delivery report asked, no client id). */
  extId?: string | null;
  simNumber?: number | null;
  deliveryReport?: boolean;
  encrypted?: boolean;
  dataPort?: number | null;
  extPosition?: number | null;
}

/** An attempt that ended without sending its message: how, and why. */
export interface AttemptEnd {
  messageId: string;
  gatewayId: number;
  attempt: number;
  outcome: string;
  error: string | null;
}

/** What a message workflow needs to know of its message. Plain JSON: it crosses into Temporal. */
export interface MessagePlan {
  status: OutboundStatus;
  recipient: string;
  body: string;
  sendAtMs: number | null;
  expiresAtMs: number;
  attempts: number;
  preferredGatewayId: number | null;
  /** `body` is a masked copy: the device activity fetches the text itself right before the push. */
  sealed: boolean;
  /** Only a phone running SMSGate's app can send it (see `routingOf`). */
  app?: boolean;
  /** Not held back by a phone's sends per minute (SMSGate priority 100 and above). */
  expedited?: boolean;
  /** The gateway of the attempt in progress (`dispatched` or `sent`), else null. */
  gatewayId?: number | null;
  /** Whether that gateway acknowledged the message. */
  acked?: boolean;
  /** The device id of the message's last gateway, if it had one. */
  deviceId?: string | null;
}

/** How a request to put a message back in the queue ended. */
export interface RequeueResult {
  requeued: boolean;
  /** The message's status when it was not requeued (`dispatched`: its gateway holds it). */
  status: OutboundStatus;
  /** Whether the gateway that holds it acknowledged it. */
  acked: boolean;
}

/** One attempt at a message, as PostgreSQL returns it. */
export interface AttemptRow {
  attempt: number;
  device_id: string | null;
  dispatched_at: string;
  acked_at: string | null;
  ended_at: string | null;
  outcome: string | null;
  error: string | null;
}

/** A message with its gateway's device id, for the events it emits. */
export interface MessageWithGateway {
  id: string;
  recipient: string;
  body: string;
  status: OutboundStatus;
  gateway_id: number | null;
  device_id: string | null;
  sent_at: string | null;
  delivered_at: string | null;
  failed_at: string | null;
  error_message: string | null;
}

/** A timestamp column as JavaScript's `toISOString()` writes it (UTC, milliseconds, `Z`). */
const isoSql = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * The payload of a message event, built by PostgreSQL from the moved message `m` and its gateway's
 * device id `device_id`, with the keys in the order the webhooks documentation lists them (as the
 * lifecycle's `messageEvent` writes them for the events it raises itself).
 */
function eventJson(type: "sms_sent" | "sms_delivered"): string {
  const time = type === "sms_sent" ? "sent_at" : "delivered_at";
  return `json_build_object('event', '${type}', 'message_id', m.id, 'to', m.recipient, 'message', m.body,
            '${time}', ${isoSql(`m.${time}`)}, 'gateway_id', m.device_id)`;
}

/**
 * The statement of a report, one round trip with nothing half-done: the message moves (only from
 * the statuses `transition` leaves, on the gateway it was given to), and with it, when it was not
 * sent before, its attempt closes as sent and its gateway counts it (the gateways module's step);
 * its events are recorded (the events module's step: `sms_sent` once, `sms_delivered`). The joined
 * row is read before the update, so `was` is the status it leaves. One row for a moved message, with
 * the events recorded as JSON; none for a repeated or late report.
 */
function reported(transition: "sent" | "delivered", set: string): string {
  const types: ("sms_sent" | "sms_delivered")[] = transition === "sent" ? ["sms_sent"] : ["sms_sent", "sms_delivered"];
  return `with m as (
         update messages m set status = '${transition}', ${set}, error_message = null, sealed_body = null,
                updated_at = now()
           from (select id, status from messages where id = ?) old join gateways g on g.id = ?
          where m.id = old.id and m.gateway_id = g.id and ${leaves(transition, "m.status")}
         returning m.id, m.recipient, m.body, m.sent_at, m.delivered_at, m.created_at, m.gateway_id, g.device_id,
                   old.status as was, m.workflow_started_at),
       unsent as (select id, gateway_id from m where was <> 'sent'),
       a as (
         update message_attempts set outcome = 'sent', ended_at = coalesce(ended_at, now())
          where message_id = (select id from unsent) and gateway_id = (select gateway_id from unsent)
            and outcome is null),
       counted as (${counting("sent", "unsent")}),
       raised as (
         select e.n, e.type, m.id as message_id, e.payload from m
          cross join lateral (values ${types.map((type, i) => `(${i + 1}, '${type}', ${eventJson(type)})`).join(", ")})
                as e(n, type, payload)),
       recorded as (${recordingEvents("raised")})
       select m.*, (select coalesce(json_agg(json_build_object('id', r.id::text, 'payload', r.payload,
                                             'dispatched', r.dispatched) order by r.id), '[]')
                      from recorded r) as events
         from m`;
}

const reportedSql = {
  sent: reported("sent", "sent_at = now()"),
  delivered: reported("delivered", "delivered_at = now(), sent_at = coalesce(m.sent_at, now())"),
};

/** A message a report moved: what its events say, the status it left, and the events recorded. */
export interface MovedMessage {
  id: string;
  recipient: string;
  body: string;
  sent_at: string;
  delivered_at: string | null;
  created_at: string;
  gateway_id: number;
  device_id: string;
  was: OutboundStatus;
  workflow_started_at: string | null;
  events: RecordedEvent[];
}

/** Ends the attempt in progress of the message moved in \`m\` (id, attempts) if it is still open. */
function closingOpenAttempt(outcomeSql: string, errorSql: string): string {
  return `update message_attempts a set outcome = ${outcomeSql}, error = ${errorSql}, ended_at = now()
            from m where a.message_id = m.id and a.attempt = m.attempts and a.ended_at is null`;
}

/** The columns a new message is stored in, each with its type and its value. */
const newMessageColumns: readonly [column: string, type: string, value: (message: NewMessage) => unknown][] = [
  ["id", "varchar", (m) => m.id],
  ["client_key_id", "int", (m) => m.clientKeyId],
  ["recipient", "varchar", (m) => m.recipient],
  ["body", "text", (m) => m.body],
  ["priority", "int", (m) => m.priority],
  ["send_at", "timestamptz", (m) => m.sendAt],
  ["expires_at", "timestamptz", (m) => m.expiresAt],
  ["preferred_gateway_id", "int", (m) => m.preferredGatewayId],
  ["metadata", "jsonb", (m) => m.metadata],
  ["idempotency_key", "varchar", (m) => m.idempotencyKey],
  ["request_digest", "text", (m) => m.digest],
  ["sealed_body", "text", (m) => m.sealedBody],
  ["trace_context", "varchar", (m) => m.traceContext ?? null],
  ["ext_id", "varchar", (m) => m.extId ?? null],
  ["sim_number", "smallint", (m) => m.simNumber ?? null],
  ["delivery_report", "boolean", (m) => m.deliveryReport ?? true],
  ["encrypted", "boolean", (m) => m.encrypted ?? false],
  ["data_port", "int", (m) => m.dataPort ?? null],
  ["ext_position", "smallint", (m) => m.extPosition ?? null],
];
const newMessageColumnList = newMessageColumns.map(([column]) => column).join(", ");
const onIdempotencyConflict = "on conflict (client_key_id, idempotency_key) do nothing returning *";
/** One message, its values as parameters. */
const insertOneSql = `insert into messages (${newMessageColumnList})
  values (${newMessageColumns.map(() => "?").join(", ")}) ${onIdempotencyConflict}`;
/** Several messages, each column's values as one array: one prepared statement for any count. */
const insertManySql = `insert into messages (${newMessageColumnList})
  select * from unnest(${newMessageColumns.map(([, type]) => `?::${type}[]`).join(", ")}) ${onIdempotencyConflict}`;

/**
 * A recipient's state as SMSGate names it: `Pending` until its phone has it (acknowledged or
 * fetched), `Processed` while the phone sends it, then `Sent`, `Delivered`, `Failed` (failed or
 * expired) or `Cancelled`.
 */
const recipientStateSql = `case when m.status = 'queued' or (m.status = 'dispatched' and m.acked_at is null
                                   and m.fetched_at is null) then 'Pending'
     when m.status = 'dispatched' then 'Processed' when m.status = 'sent' then 'Sent'
     when m.status = 'delivered' then 'Delivered' when m.status = 'cancelled' then 'Cancelled' else 'Failed' end`;

/**
 * A logical message's state from its recipients', by the rule of SMSGate's app
 * (`MessageWithRecipients.state`): any Pending, else any Cancelled, else any Processed; then Failed
 * when all failed, Delivered when all were delivered, else Sent.
 */
const groupState = (over = "") => `(case when bool_or(${recipientStateSql} = 'Pending')${over} then 'Pending'
     when bool_or(${recipientStateSql} = 'Cancelled')${over} then 'Cancelled'
     when bool_or(${recipientStateSql} = 'Processed')${over} then 'Processed'
     when bool_and(${recipientStateSql} = 'Failed')${over} then 'Failed'
     when bool_and(${recipientStateSql} = 'Delivered')${over} then 'Delivered' else 'Sent' end)`;

/** A recipient of a logical message, with its state and the message's (`group_state`). */
export interface GroupRecipientRow {
  id: string;
  ext_id: string | null;
  client_key_id: number | null;
  recipient: string;
  body: string;
  encrypted: boolean;
  data_port: number | null;
  state: string;
  group_state: string;
  error_message: string | null;
  created_at: string;
  processed_at: string | null;
  sent_at: string | null;
  delivered_at: string | null;
  failed_at: string | null;
  cancelled_at: string | null;
  device_id: string | null;
}

/** What a list of logical messages is filtered by; `clientKeyId` null: every application's. */
export interface GroupFilters {
  clientKeyId: number | null;
  from?: Date;
  to?: Date;
  state?: string;
  deviceId?: string;
  ascending: boolean;
  limit: number;
  offset: number;
}

const groupRowsSql = `select m.id, m.ext_id, m.client_key_id, m.recipient, m.body, m.encrypted, m.data_port,
       ${recipientStateSql} as state,
       ${groupState(" over (partition by m.client_key_id, coalesce(m.ext_id, m.id))")} as group_state,
       m.error_message, m.created_at, coalesce(m.acked_at, m.fetched_at) as processed_at, m.sent_at, m.delivered_at,
       coalesce(m.failed_at, m.expired_at) as failed_at, m.cancelled_at, g.device_id
  from messages m left join gateways g on g.id = m.gateway_id`;

/** A command a gateway has not acknowledged, as a phone is handed it. */
export interface UnacknowledgedRow {
  id: string;
  recipient: string;
  body: string;
  sealed_body: string | null;
  priority: number;
  expires_at: string;
  created_at: string;
  sim_number: number | null;
  delivery_report: boolean;
  encrypted: boolean;
  data_port: number | null;
}

const handedColumns =
  "id, recipient, body, sealed_body, priority, expires_at, created_at, sim_number, delivery_report, encrypted, data_port";
const unacknowledged = (order: "asc" | "desc") =>
  `select ${handedColumns} from messages
    where gateway_id = ? and status = 'dispatched' and acked_at is null order by dispatched_at ${order}, id ${order}
    limit ?`;
const unacknowledgedSql = { oldestFirst: unacknowledged("asc"), newestFirst: unacknowledged("desc") };
const fetching = (order: "asc" | "desc") =>
  `with picked as (${unacknowledged(order).replace("select id,", "select dispatched_at, id,")}),
   marked as (update messages m set fetched_at = coalesce(m.fetched_at, now()) from picked where m.id = picked.id)
   select ${handedColumns} from picked
    order by dispatched_at ${order}, id ${order}`;
const fetchSql = { oldestFirst: fetching("asc"), newestFirst: fetching("desc") };

/**
 * Messages cancelled by their sender after this gateway fetched or took them, whose cancel it has
 * not confirmed (within a day of the cancel): a polling phone learns of them as `Cancelling`.
 */
const cancellingSql = `select ${handedColumns} from messages
  where gateway_id = ? and status = 'cancelled' and cancel_confirmed_at is null
    and (fetched_at is not null or acked_at is not null) and cancelled_at > now() - interval '1 day'
  order by cancelled_at, id limit ?`;

const cancelling = (where: string) =>
  `update messages set status = 'cancelled', cancelled_at = now(), sealed_body = null, updated_at = now()
    where ${where} and ${leaves("cancel")} returning *`;
const cancelSql = { any: cancelling("id = ?"), onGateway: cancelling("id = ? and gateway_id = ?") };

/**
 * Every statement on `messages` and `message_attempts`: the only module that reads or writes them.
 * Each write is one statement (or one transaction), conditional on the transitions above.
 */
export class MessageRepository {
  private readonly statements: Sql;

  /**
   * Sends stored together: under load, the sends that arrive at once share one insert (one round
   * trip, one commit) instead of queueing for the pool one by one.
   */
  private readonly inserts = new Batcher<NewMessage, MessageRow | undefined>((messages) => this.insertMany(messages), {
    maxBatch: tuning.insertBatchSize.value,
    concurrency: tuning.insertBatchesInFlight.value,
  });

  constructor(em: EntityManager) {
    this.statements = new Sql(em);
  }

  /** Runs `work` in one transaction: a batch of sends, or a report with what it records elsewhere. */
  transaction<T>(work: (em: Tx) => Promise<T>): Promise<T> {
    return this.statements.transaction(work);
  }

  private sql<T>(query: string, params: unknown[] = [], em?: Tx): Promise<T[]> {
    return this.statements.all<T>(query, params, em);
  }

  /** The first row a statement returns, if any. */
  private async one<T>(query: string, params: unknown[] = [], em?: Tx): Promise<T | undefined> {
    return (await this.sql<T>(query, params, em))[0];
  }

  /** The `id` column of every row a statement returns. */
  private async ids(query: string, params: unknown[]): Promise<string[]> {
    return (await this.sql<{ id: string }>(query, params)).map((row) => row.id);
  }

  // --- accepting ---

  /**
   * Stores a message; undefined when the key's idempotency key was used before (nothing stored).
   * Outside a transaction, messages sent at the same moment are stored by one statement (each is
   * durable once its promise resolves, as alone).
   */
  async insert(message: NewMessage, em?: Tx): Promise<MessageRow | undefined> {
    if (em === undefined) return this.inserts.add(message);
    return this.one<MessageRow>(
      insertOneSql,
      newMessageColumns.map(([, , value]) => value(message)),
      em,
    );
  }

  /**
   * Stores messages in one statement; for each, its row, or undefined when its key's idempotency key
   * was used before (by an earlier message or an earlier one in the list). They share `created_at`
   * (they were sent at the same moment), so "newest first" lists them by id.
   */
  private async insertMany(messages: NewMessage[]): Promise<(MessageRow | undefined)[]> {
    const rows = await this.statements.all<MessageRow>(
      insertManySql,
      newMessageColumns.map(([, , value]) => messages.map(value)),
    );
    const byId = new Map(rows.map((row) => [row.id, row]));
    return messages.map((message) => byId.get(message.id));
  }

  async findByIdempotencyKey(
    clientKeyId: number,
    idempotencyKey: string | null,
    em?: Tx,
  ): Promise<MessageRow | undefined> {
    return this.one<MessageRow>(
      "select * from messages where client_key_id = ? and idempotency_key = ?",
      [clientKeyId, idempotencyKey],
      em,
    );
  }

  async find(messageId: string): Promise<MessageRow | undefined> {
    return this.one<MessageRow>("select * from messages where id = ?", [messageId]);
  }

  /**
   * One page of messages, newest first, filtered; `after` is the last row of the previous page
   * (keyset paging: each page is an index range scan, however many messages are stored).
   */
  list(filters: MessageListFilters): Promise<ListedMessageRow[]> {
    const { sql, params } = listQuery(filters);
    return this.sql(sql, params);
  }

  /** Messages due now that no gateway has been given yet, per client key. */
  backlog(): Promise<{ client_key_id: number | null; count: number }[]> {
    return this.sql(
      `select client_key_id, count(*)::int as count from messages
        where status = 'queued' and (send_at is null or send_at <= now()) group by client_key_id`,
    );
  }

  // --- the workflow's steps ---

  /** The message's plan; loading it is also how the sweeper learns that its workflow runs. */
  claimForWorkflow(messageId: string): Promise<MessagePlan | null> {
    return this.plan(
      "update messages set workflow_started_at = coalesce(workflow_started_at, now()) where id = ? returning",
      messageId,
    );
  }

  /** The message's plan, read before its workflow runs (the starter's first dispatch). */
  peekPlan(messageId: string): Promise<MessagePlan | null> {
    return this.plan("select", messageId, "from messages where id = ?");
  }

  private async plan(head: string, messageId: string, tail = ""): Promise<MessagePlan | null> {
    const row = await this.one<{
      status: OutboundStatus;
      recipient: string;
      body: string;
      send_at: string | null;
      expires_at: string;
      attempts: number;
      preferred_gateway_id: number | null;
      priority: number;
      sealed: boolean;
      gateway_id: number | null;
      device_id: string | null;
      acked: boolean;
      sim_number: number | null;
      data_port: number | null;
      encrypted: boolean;
    }>(
      `${head} status, recipient, body, send_at, expires_at, attempts, preferred_gateway_id, priority,
              sealed_body is not null as sealed, gateway_id, acked_at is not null as acked,
              sim_number, data_port, encrypted,
              (select device_id from gateways where gateways.id = messages.gateway_id) as device_id ${tail}`,
      [messageId],
    );
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
      ...routingOf({
        priority: row.priority,
        simNumber: row.sim_number,
        dataPort: row.data_port,
        encrypted: row.encrypted,
      }),
      gatewayId: row.status === "dispatched" || row.status === "sent" ? row.gateway_id : null,
      acked: row.acked,
      deviceId: row.device_id,
    };
  }

  async statusAndGateway(
    messageId: string,
  ): Promise<{ status: OutboundStatus; gateway_id: number | null } | undefined> {
    return this.one<{ status: OutboundStatus; gateway_id: number | null }>(
      "select status, gateway_id from messages where id = ?",
      [messageId],
    );
  }

  /**
   * Assigns the message to a gateway for attempt number `attempt` and records the attempt, in one
   * statement; false when it is not waiting in the queue, or that attempt was already made (a step
   * run again after a crash must not give the message to a second gateway).
   */
  async dispatch(
    messageId: string,
    gatewayId: number,
    attempt: number,
  ): Promise<{ dispatched: boolean; ageSeconds: number }> {
    const [row] = await this.sql<{ age_seconds: number }>(
      `with m as (
         update messages set status = 'dispatched', gateway_id = ?, attempts = ?, acked_at = null, fetched_at = null,
                dispatched_at = now(), updated_at = now()
          where id = ? and ${leaves("dispatch")} and attempts < ? returning id, created_at, dispatched_at),
       a as (
         insert into message_attempts (message_id, attempt, gateway_id)
         select id, ?, ? from m
         on conflict (message_id, attempt) do update set gateway_id = excluded.gateway_id
         returning message_id)
       select extract(epoch from m.dispatched_at - m.created_at)::float8 as age_seconds from m join a on a.message_id = m.id`,
      [gatewayId, attempt, messageId, attempt, attempt, gatewayId],
    );
    return { dispatched: row !== undefined, ageSeconds: row?.age_seconds ?? 0 };
  }

  /** The attempt in progress: the message's status, its gateway, the attempt's number, its acknowledgement. */
  async current(
    messageId: string,
  ): Promise<{ status: OutboundStatus; gateway_id: number | null; attempts: number; acked: boolean } | undefined> {
    return this.one("select status, gateway_id, attempts, acked_at is not null as acked from messages where id = ?", [
      messageId,
    ]);
  }

  /**
   * Ends an attempt that did not send the message and puts the message back in the queue, in one
   * statement. Refused while the attempt's gateway holds the message: it acknowledged it and did not
   * report a failure (unless `force`: the operator's resend after an acknowledgement timeout), or it
   * fetched it (a phone that sends what it fetches) and is still connected or fetched it less than
   * `fetchHoldMs` ago. The conditions are on the message's row, so an acknowledgement that commits
   * first wins.
   */
  async requeue(
    { messageId, gatewayId, attempt, outcome, error }: AttemptEnd,
    force: boolean,
    fetched: { connected: boolean; holdMs: number },
  ): Promise<RequeueResult> {
    const row = await this.one<{ requeued: boolean; status: OutboundStatus; acked: boolean }>(
      `with moved as (
         update messages m set status = 'queued', gateway_id = null, error_message = ?, updated_at = now()
          where m.id = ? and ${leaves("requeue", "m.status")} and m.gateway_id = ?
            and ((m.acked_at is null
                  and (m.fetched_at is null
                       or not (?::boolean or m.fetched_at > now() - make_interval(secs => ?::float8 / 1000))))
                 or ?::boolean or exists (
                   select 1 from message_attempts a
                    where a.message_id = m.id and a.attempt = m.attempts and a.outcome = 'failed'))
         returning m.id),
       closed as (
         update message_attempts set outcome = coalesce(outcome, ?), error = coalesce(error, ?),
                ended_at = coalesce(ended_at, now())
          where message_id in (select id from moved) and attempt = ?)
       select exists (select 1 from moved) as requeued, m.status, m.acked_at is not null as acked
         from messages m where m.id = ?`,
      [error, messageId, gatewayId, fetched.connected, fetched.holdMs, force, outcome, error, attempt, messageId],
    );
    return row ?? { requeued: false, status: "failed", acked: false };
  }

  /** Ends the current attempt with an outcome (a cancelled or expired message's last attempt). */
  async closeAttempt(messageId: string, attempt: number, outcome: string): Promise<void> {
    await this.sql(
      "update message_attempts set outcome = ?, ended_at = now() where message_id = ? and attempt = ? and ended_at is null",
      [outcome, messageId, attempt],
    );
  }

  // --- reports ---

  /**
   * Sent: moved, its attempt closed, counted on its gateway and `sms_sent` recorded, in one statement.
   * Returns the moved message with its events, or undefined for a repeated or late report.
   */
  markSent(messageId: string, gatewayId: number): Promise<MovedMessage | undefined> {
    return this.one<MovedMessage>(reportedSql.sent, [messageId, gatewayId]);
  }

  /**
   * Delivered, in one statement: moved, its attempt closed and counted when no sent report came
   * first, and `sms_sent` (if not yet) and `sms_delivered` recorded. Returns the moved message with
   * the status it left and its events, or undefined.
   */
  markDelivered(messageId: string, gatewayId: number): Promise<MovedMessage | undefined> {
    return this.one<MovedMessage>(reportedSql.delivered, [messageId, gatewayId]);
  }

  /**
   * Failed for good; an attempt still open (its gateway never reported) ends with it. Returns
   * whether it moved, and the device id of its last gateway.
   */
  async markFailed(messageId: string, error: string): Promise<{ moved: boolean; deviceId: string | null }> {
    const [row] = await this.sql<{ device_id: string | null }>(
      `with m as (
         update messages set status = 'failed', failed_at = now(), error_message = ?, sealed_body = null, updated_at = now()
          where id = ? and ${leaves("failed")} returning id, attempts, gateway_id),
       closed as (${closingOpenAttempt("'failed'", "?")})
       select (select device_id from gateways g where g.id = m.gateway_id) as device_id from m`,
      [error, messageId, error],
    );
    return { moved: row !== undefined, deviceId: row?.device_id ?? null };
  }

  /** Expired; an attempt still open ends with it. Returns whether it moved. */
  async markExpired(messageId: string): Promise<boolean> {
    const rows = await this.sql(
      `with m as (
         update messages set status = 'expired', expired_at = now(), sealed_body = null, updated_at = now()
          where id = ? and ${leaves("expired")} returning id, attempts),
       closed as (${closingOpenAttempt("'expired'", "null")})
       select id from m`,
      [messageId],
    );
    return rows.length > 0;
  }

  /** Cancels a message no gateway has sent yet; undefined when it has moved past that. */
  async cancel(messageId: string): Promise<MessageRow | undefined> {
    return this.one<MessageRow>(cancelSql.any, [messageId]);
  }

  /** Messages this gateway must be told were cancelled (`cancellingSql`), at most `limit`. */
  cancelling(gatewayId: number, limit: number): Promise<UnacknowledgedRow[]> {
    return this.sql(cancellingSql, [gatewayId, limit]);
  }

  /** Records that the gateway knows a message it held was cancelled; false when it is not such a message. */
  async confirmCancel(messageId: string, gatewayId: number): Promise<boolean> {
    const row = await this.one<{ id: string }>(
      `update messages set cancel_confirmed_at = coalesce(cancel_confirmed_at, now())
        where id = ? and gateway_id = ? and status = 'cancelled' returning id`,
      [messageId, gatewayId],
    );
    return row !== undefined;
  }

  /** Cancels a message its gateway `gatewayId` holds and has not sent; undefined otherwise. */
  async cancelOn(messageId: string, gatewayId: number): Promise<MessageRow | undefined> {
    return this.one<MessageRow>(cancelSql.onGateway, [messageId, gatewayId]);
  }

  /** The message and whether `gatewayId` was ever given it (a report from elsewhere is refused). */
  async forReport(
    messageId: string,
    gatewayId: number,
  ): Promise<{ gateway_id: number | null; status: OutboundStatus; tried: boolean } | undefined> {
    return this.one<{ gateway_id: number | null; status: OutboundStatus; tried: boolean }>(
      `select m.gateway_id, m.status,
              exists(select 1 from message_attempts a where a.message_id = m.id and a.gateway_id = ?) as tried
         from messages m where m.id = ?`,
      [gatewayId, messageId],
    );
  }

  /**
   * Records that a gateway has taken a command (on the message and its current attempt). Returns
   * whether the message is that gateway's to send: it holds it now, or already reported on it. The
   * condition is on the message's row, so of an acknowledgement and a requeue only the first counts.
   */
  acknowledge(messageId: string, gatewayId: number): Promise<{ held: boolean; status: OutboundStatus | null }> {
    return this.acks.add({ messageId, gatewayId });
  }

  /**
   * Acknowledgements that arrive together (a phone taking a burst, many phones at once) share one
   * statement and one commit: each is durable within a round trip instead of waiting behind the
   * others, so that a command a phone acknowledged is not sent to it again after a crash.
   */
  private readonly acks = new Batcher<
    { messageId: string; gatewayId: number },
    { held: boolean; status: OutboundStatus | null }
  >((items) => this.acknowledgeMany(items), {
    maxBatch: tuning.ackBatchSize.value,
    concurrency: tuning.ackBatchesInFlight.value,
  });

  private async acknowledgeMany(
    items: { messageId: string; gatewayId: number }[],
  ): Promise<{ held: boolean; status: OutboundStatus | null }[]> {
    const rows = await this.sql<{ n: number; held: boolean; status: OutboundStatus | null }>(
      `with p as (select * from unnest(?::text[], ?::int[]) with ordinality as p(id, gateway_id, n)),
       m as (update messages x set acked_at = coalesce(x.acked_at, now())
               from p where x.id = p.id and x.gateway_id = p.gateway_id and x.status = 'dispatched'
             returning x.id, x.attempts),
       a as (update message_attempts a set acked_at = coalesce(a.acked_at, now())
               from m where a.message_id = m.id and a.attempt = m.attempts)
       select p.n::int as n,
              coalesce(exists (select 1 from m where m.id = p.id)
                or (x.gateway_id = p.gateway_id and x.status in ('sent', 'delivered', 'failed')), false) as held,
              x.status
         from p left join messages x on x.id = p.id`,
      [items.map((item) => item.messageId), items.map((item) => item.gatewayId)],
    );
    const byPosition = new Map(rows.map((row) => [Number(row.n), row]));
    return items.map((_, i) => {
      const row = byPosition.get(i + 1);
      return { held: row?.held ?? false, status: row?.status ?? null };
    });
  }

  /**
   * Records on the attempt in progress that its gateway could not send the message, so that the
   * message may go to another gateway even though this one had acknowledged it.
   */
  async recordFailureReport(messageId: string, gatewayId: number, error: string): Promise<void> {
    await this.sql(
      `update message_attempts a set outcome = 'failed', error = ?, ended_at = coalesce(a.ended_at, now())
         from messages m
        where m.id = ? and a.message_id = m.id and a.attempt = m.attempts and a.gateway_id = ?
          and m.status = 'dispatched' and a.outcome is null`,
      [error, messageId, gatewayId],
    );
  }

  /** The trace a message was accepted in, when it was traced. */
  async traceContext(messageId: string): Promise<string | null> {
    return (
      (await this.one<{ trace_context: string | null }>("select trace_context from messages where id = ?", [messageId]))
        ?.trace_context ?? null
    );
  }

  /** Every attempt at a message, oldest first, with its gateway's device id. */
  attempts(messageId: string): Promise<AttemptRow[]> {
    return this.sql<AttemptRow>(
      `select a.attempt, g.device_id, a.dispatched_at, a.acked_at, a.ended_at, a.outcome, a.error
         from message_attempts a left join gateways g on g.id = a.gateway_id
        where a.message_id = ? order by a.attempt`,
      [messageId],
    );
  }

  /** The message with its gateway's device id. */
  async withGateway(messageId: string): Promise<MessageWithGateway | undefined> {
    return this.one<MessageWithGateway>(
      `select m.id, m.recipient, m.body, m.status, m.gateway_id, g.device_id, m.sent_at, m.delivered_at, m.failed_at, m.error_message
         from messages m left join gateways g on g.id = m.gateway_id where m.id = ?`,
      [messageId],
    );
  }

  // --- gateways and their commands ---

  /** How many messages are assigned to this gateway and not yet reported sent. */
  async countDispatched(gatewayId: number): Promise<number> {
    const row = await this.one<{ count: number }>(
      "select count(*)::int as count from messages where gateway_id = ? and status = 'dispatched'",
      [gatewayId],
    );
    return row?.count ?? 0;
  }

  /** The ids of the messages in flight on this gateway. */
  async dispatchedOn(gatewayId: number): Promise<string[]> {
    return this.ids("select id from messages where gateway_id = ? and status = 'dispatched'", [gatewayId]);
  }

  /** The stored text of a message (`sealed_body` is the encrypted text when `body` is masked). */
  async texts(messageId: string): Promise<{ body: string; sealed_body: string | null } | undefined> {
    return this.one<{ body: string; sealed_body: string | null }>(
      "select body, sealed_body from messages where id = ?",
      [messageId],
    );
  }

  /**
   * Commands dispatched to this gateway that it has not acknowledged, oldest first (newest first
   * with `newestFirst`), at most `limit`.
   */
  unacknowledged(gatewayId: number, newestFirst = false, limit = 10_000): Promise<UnacknowledgedRow[]> {
    return this.sql(newestFirst ? unacknowledgedSql.newestFirst : unacknowledgedSql.oldestFirst, [gatewayId, limit]);
  }

  /** The same, for a phone that fetches them: each is marked fetched (when first), in one statement. */
  fetch(gatewayId: number, newestFirst: boolean, limit: number): Promise<UnacknowledgedRow[]> {
    return this.sql(newestFirst ? fetchSql.newestFirst : fetchSql.oldestFirst, [gatewayId, limit]);
  }

  /** A gateway's device id. */
  async deviceIdOf(gatewayId: number): Promise<string | undefined> {
    return (await this.one<{ device_id: string }>("select device_id from gateways where id = ?", [gatewayId]))
      ?.device_id;
  }

  /**
   * Active online gateways that may take message `messageId` (an account's message: its account's
   * gateways only, `accountScope`), the preferred one first, then by priority and fewest messages in
   * flight; `tier` numbers the groups of equals (same preference, priority and load), for the picker
   * to share messages among them.
   */
  gatewaysByLoad(preferredGatewayId: number | null, messageId?: string): Promise<GatewayCandidate[]> {
    return this.sql(
      `with ${accountScope} ${rankedCandidates(
        `select g.id, g.device_id, g.priority, (g.id = ?) as preferred, g.id as n from gateways g
          where g.active and g.status = 'online' and ${ofAccount("g")}`,
      )} order by tier, id`,
      [messageId ?? null, preferredGatewayId],
    );
  }

  /**
   * A window of the gateways `gatewaysByLoad` would rank first, read through an index instead of the
   * whole fleet (or the whole account): the preferred gateway when it is active, online and may take
   * the message, then up to `size` active online gateways of the highest priority, those with an id
   * above `after` first (then from the lowest id again), ranked as `gatewaysByLoad` ranks them, in
   * that order. Its cost does not grow with the fleet.
   */
  gatewayWindow(
    preferredGatewayId: number | null,
    after: number,
    size: number,
    messageId?: string,
  ): Promise<GatewayCandidate[]> {
    const others = (from: string) =>
      `select g.id, g.device_id, g.priority from gateways g, top
        where g.active and g.status = 'online' and g.priority = top.priority and ${ofAccount("g")} and ${from}
          and g.id is distinct from ?::int order by g.id limit ?`;
    return this.sql(
      `with ${accountScope},
            top as (select max(priority) as priority from gateways g where active and status = 'online' and ${ofAccount("g")}),
            others as (
              select o.id, o.device_id, o.priority, row_number() over (order by o.part, o.id) as n
                from ((select *, 1 as part from (${others("g.id > ?")}) a)
                      union all (select *, 2 from (${others("g.id <= ?")}) b)) o),
            win as (
              select g.id, g.device_id, g.priority, true as preferred, 0::bigint as n
                from gateways g where g.id = ? and g.active and g.status = 'online' and ${ofAccount("g")}
              union all
              select id, device_id, priority, false, n from others where n <= ?)
       ${rankedCandidates("select * from win")} order by n`,
      [messageId ?? null, after, preferredGatewayId, size, after, preferredGatewayId, size, preferredGatewayId, size],
    );
  }

  // --- the sweeper ---

  /** Messages waiting for a gateway whose workflows run, highest priority first. */
  async queuedWithWorkflow(limit: number): Promise<string[]> {
    return this.ids(
      `select id from messages where status = 'queued' and workflow_started_at is not null
        order by priority desc, created_at limit ?`,
      [limit],
    );
  }

  /**
   * Messages whose workflow never ran, accepted more than `olderThanSeconds` ago: in flight, or already
   * ended by their phone's reports after the starter's first dispatch (their workflow then only shows it).
   */
  async withoutWorkflow(olderThanSeconds: number, limit: number): Promise<string[]> {
    return this.ids(
      `select id from messages where workflow_started_at is null
          and created_at < now() - make_interval(secs => ?) order by created_at limit ?`,
      [olderThanSeconds, limit],
    );
  }

  // --- figures ---

  /** The messages waiting for a gateway, those given to one, and of those the unacknowledged. */
  async inFlight(): Promise<{ queued: number; dispatched: number; unacknowledged: number }> {
    const row = await this.one<{ queued: number; dispatched: number; unacknowledged: number }>(
      `select count(*) filter (where status = 'queued')::int as queued,
              count(*) filter (where status = 'dispatched')::int as dispatched,
              count(*) filter (where status = 'dispatched' and acked_at is null)::int as unacknowledged
         from messages where status in ('queued', 'dispatched')`,
    );
    return row ?? { queued: 0, dispatched: 0, unacknowledged: 0 };
  }

  /** Messages given to each gateway and not yet reported sent. */
  async inFlightByGateway(): Promise<Map<number, number>> {
    const rows = await this.sql<{ gateway_id: number; count: number }>(
      "select gateway_id, count(*)::int as count from messages where status = 'dispatched' group by gateway_id",
    );
    return new Map(rows.map((row) => [row.gateway_id, row.count]));
  }

  /**
   * The operator's overview: the messages accepted in each of the last sixty minutes by where they
   * stand now, and of today's (from midnight in `timeZone`) ended messages how many went out and how
   * many failed.
   */
  async overview(timeZone: string): Promise<{
    minutes: { minute: string; delivered: number; failed: number; expired: number; pending: number }[];
    delivered_today: number;
    failed_today: number;
  }> {
    const minutes = await this.sql<{
      minute: string;
      delivered: number;
      failed: number;
      expired: number;
      pending: number;
    }>(
      `select date_trunc('minute', created_at) as minute,
              count(*) filter (where status in ('sent', 'delivered'))::int as delivered,
              count(*) filter (where status = 'failed')::int as failed,
              count(*) filter (where status in ('expired', 'cancelled'))::int as expired,
              count(*) filter (where status in ('queued', 'dispatched'))::int as pending
         from messages where created_at >= date_trunc('minute', now()) - interval '59 minutes'
        group by 1 order by 1`,
    );
    const ended = await this.one<{ delivered: number; failed: number }>(
      `with today as (select (date_trunc('day', now() at time zone ?) at time zone ?) as start)
       select (select count(*) from messages, today where sent_at >= today.start and status in ('sent', 'delivered'))::int as delivered,
              (select count(*) from messages, today where failed_at >= today.start)::int as failed`,
      [timeZone, timeZone],
    );
    return { minutes, delivered_today: ended?.delivered ?? 0, failed_today: ended?.failed ?? 0 };
  }

  /** The messages' figures of the admin stats; "today" starts at midnight in `timeZone`. */
  async figures(
    timeZone: string,
  ): Promise<{ total_sent: number; sent_today: number; pending: number; failed_today: number } | undefined> {
    return this.one<{ total_sent: number; sent_today: number; pending: number; failed_today: number }>(
      `with today as (select (date_trunc('day', now() at time zone ?) at time zone ?) as start)
       select count(*) filter (where sent_at is not null)::int as total_sent,
              count(*) filter (where sent_at >= today.start)::int as sent_today,
              count(*) filter (where status in ('queued', 'dispatched'))::int as pending,
              count(*) filter (where failed_at >= today.start)::int as failed_today
         from messages, today`,
      [timeZone, timeZone],
    );
  }

  // --- SMSGate's logical messages: the recipients stored under one client id (`ext_id`) ---

  /**
   * The logical message a message is a recipient of (SMSGate's id of it: its own id when it has
   * none), and its SIM choice.
   */
  async groupOf(messageId: string): Promise<{ groupId: string; simNumber: number | null } | undefined> {
    const row = await this.one<{ id: string; sim_number: number | null }>(
      "select coalesce(ext_id, id) as id, sim_number from messages where id = ?",
      [messageId],
    );
    return row === undefined ? undefined : { groupId: row.id, simNumber: row.sim_number };
  }

  /**
   * Whether `extId` already names a message of this key. Taken under a transaction-wide lock on the
   * pair, so that two sends with the same id at once cannot both find it free.
   */
  async extIdTaken(clientKeyId: number, extId: string, em: Tx): Promise<boolean> {
    const row = await this.one<{ taken: boolean }>(
      `select pg_advisory_xact_lock(hashtextextended(? || ':' || ?, 0)) is not null
              and exists (select 1 from messages where client_key_id = ? and ext_id = ?) as taken`,
      [clientKeyId, extId, clientKeyId, extId],
      em,
    );
    return row?.taken === true;
  }

  /**
   * The recipients of the logical message `groupId` names (its client id, or the smsgw id of one of
   * its recipients, or of a message sent through smsgw's own API), oldest first; `clientKeyId` null:
   * any key's.
   */
  group(clientKeyId: number | null, groupId: string): Promise<GroupRecipientRow[]> {
    // The message its client id names, or the one holding the recipient a message id names.
    return this.sql<GroupRecipientRow>(
      `with t as (select client_key_id, ext_id, id from messages
                   where (ext_id = ? or id = ?) and (?::int is null or client_key_id = ?)
                   order by ext_id = ? desc, created_at limit 1)
       ${groupRowsSql} join t on (t.ext_id is null and m.id = t.id)
          or (m.ext_id = t.ext_id and m.client_key_id is not distinct from t.client_key_id)
        order by m.ext_position, m.created_at, m.id`,
      [groupId, groupId, clientKeyId, clientKeyId, groupId],
    );
  }

  /**
   * One page of logical messages (newest first unless `ascending`), filtered, with how many match in
   * all, and the recipients of each message on the page.
   */
  async groups(filters: GroupFilters): Promise<{ total: number; rows: GroupRecipientRow[] }> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filters.clientKeyId !== null) {
      where.push("m.client_key_id = ?");
      params.push(filters.clientKeyId);
    }
    if (filters.from !== undefined) {
      where.push("m.created_at >= ?");
      params.push(filters.from);
    }
    if (filters.to !== undefined) {
      where.push("m.created_at < ?");
      params.push(filters.to);
    }
    const having: string[] = [];
    if (filters.state !== undefined) {
      having.push(`${groupState()} = ?`);
      params.push(filters.state);
    }
    if (filters.deviceId !== undefined) {
      having.push("bool_or(g.device_id = ?)");
      params.push(filters.deviceId);
    }
    const order = filters.ascending ? "asc" : "desc";
    // The logical messages that match, one row each (read once for the page, once more for the count
    // only when the page is past the last one).
    const grouped = `from messages m left join gateways g on g.id = m.gateway_id
        ${where.length === 0 ? "" : `where ${where.join(" and ")}`}
        group by m.client_key_id, coalesce(m.ext_id, m.id)
        ${having.length === 0 ? "" : `having ${having.join(" and ")}`}`;
    const page = await this.sql<{ client_key_id: number | null; group_id: string; total: number }>(
      `select m.client_key_id, coalesce(m.ext_id, m.id) as group_id, count(*) over ()::int as total ${grouped}
        order by min(m.created_at) ${order}, 2 ${order} limit ? offset ?`,
      [...params, filters.limit, filters.offset],
    );
    if (page.length === 0) {
      if (filters.offset === 0) return { total: 0, rows: [] };
      const count = await this.one<{ total: number }>(
        `select count(*)::int as total from (select 1 ${grouped}) c`,
        params,
      );
      return { total: count?.total ?? 0, rows: [] };
    }
    const rows = await this.sql<GroupRecipientRow>(
      `${groupRowsSql} join unnest(?::int[], ?::text[]) with ordinality as p(client_key_id, group_id, n)
          on p.client_key_id is not distinct from m.client_key_id
         and (m.ext_id = p.group_id or (m.ext_id is null and m.id = p.group_id))
        order by p.n, m.ext_position, m.created_at, m.id`,
      [page.map((row) => row.client_key_id), page.map((row) => row.group_id)],
    );
    return { total: page[0]?.total ?? 0, rows };
  }
}
