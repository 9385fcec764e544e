import type { EntityManager } from "@mikro-orm/postgresql";
import { Sql, type Tx } from "../../db/sql.js";

/** A stored inbound SMS. */
export interface InboundRow {
  id: string;
  sender: string;
  body: string;
  received_at: string;
  /** The device id of the gateway that received it (null when that gateway was deleted). */
  device_id: string | null;
}

/** What a list of inbound SMS is filtered by. */
export interface InboundFilters {
  sender?: string;
  /** Only those this gateway (its device id) received. */
  deviceId?: string;
  /** Only those the gateways of this account (an SMSGate account's key) received. */
  accountKeyId?: number;
  since?: Date;
  until?: Date;
  limit: number;
  offset: number;
}

/** Every statement on `inbound_messages`: the only code that writes it. */
export class InboundRepository {
  private readonly sql: Sql;

  constructor(em: EntityManager) {
    this.sql = new Sql(em);
  }

  transaction<T>(work: (em: Tx) => Promise<T>): Promise<T> {
    return this.sql.transaction(work);
  }

  /** The latest identical SMS from the same gateway within `windowSeconds`, if any. */
  async recentRepeat(
    gatewayId: number,
    sender: string,
    body: string,
    windowSeconds: number,
    em: Tx,
  ): Promise<string | undefined> {
    const row = await this.sql.one<{ id: string }>(
      `select id from inbound_messages where gateway_id = ? and sender = ? and body = ?
          and created_at > now() - make_interval(secs => ?) order by created_at desc limit 1`,
      [gatewayId, sender, body, windowSeconds],
      em,
    );
    return row?.id;
  }

  /** Stores an SMS; undefined when one with the same digest is stored already. */
  insert(
    sms: { id: string; gatewayId: number; sender: string; body: string; receivedAt: Date; digest: string },
    em: Tx,
  ): Promise<InboundRow | undefined> {
    return this.sql.one(
      `insert into inbound_messages (id, gateway_id, sender, body, received_at, dedupe_digest)
       values (?, ?, ?, ?, ?, ?) on conflict (dedupe_digest) do nothing
       returning id, sender, body, received_at`,
      [sms.id, sms.gatewayId, sms.sender, sms.body, sms.receivedAt, sms.digest],
      em,
    );
  }

  async idByDigest(digest: string, em: Tx): Promise<string | undefined> {
    return (await this.sql.one<{ id: string }>("select id from inbound_messages where dedupe_digest = ?", [digest], em))
      ?.id;
  }

  /** One page of inbound SMS, newest first, and how many match in all. */
  async page(filters: InboundFilters): Promise<{ rows: InboundRow[]; total: number }> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filters.sender !== undefined) {
      where.push("sender = ?");
      params.push(filters.sender);
    }
    if (filters.deviceId !== undefined) {
      where.push("gateway_id = (select id from gateways where device_id = ?)");
      params.push(filters.deviceId);
    }
    if (filters.accountKeyId !== undefined) {
      where.push("gateway_id in (select id from gateways where account_key_id = ?)");
      params.push(filters.accountKeyId);
    }
    if (filters.since !== undefined) {
      where.push("received_at > ?");
      params.push(filters.since);
    }
    if (filters.until !== undefined) {
      where.push("received_at < ?");
      params.push(filters.until);
    }
    const clause = where.length === 0 ? "" : `where ${where.join(" and ")}`;
    const [count, rows] = await Promise.all([
      this.sql.one<{ total: number }>(`select count(*)::int as total from inbound_messages ${clause}`, params),
      this.sql.all<InboundRow>(
        `select i.id, i.sender, i.body, i.received_at, g.device_id
           from (select id, sender, body, received_at, gateway_id from inbound_messages ${clause}
                  order by received_at desc, id desc limit ? offset ?) i
           left join gateways g on g.id = i.gateway_id order by i.received_at desc, i.id desc`,
        [...params, filters.limit, filters.offset],
      ),
    ]);
    return { rows, total: count?.total ?? 0 };
  }
}
