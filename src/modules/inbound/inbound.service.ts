import { createHash } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";
import { invalid, missing } from "../../shared/errors.js";
import { newMessageId } from "../../shared/ids.js";
import { normalizePhoneNumber } from "../../shared/phone.js";
import type { EventsService } from "../events/index.js";

/** An inbound SMS as the API lists it. */
export interface InboundView {
  id: string;
  sender: string;
  body: string;
  receivedAt: Date;
}

/** A page of inbound SMS. */
export interface InboundPage {
  messages: InboundView[];
  total: number;
  page: number;
  pages: number;
}

/** How long a report without a device timestamp counts as a repeat of an identical earlier one. */
const repeatWindowSeconds = 120;
const maxBodyLength = 10_000;
const defaultPageSize = 50;
const maxPageSize = 100;

interface Row {
  id: string;
  sender: string;
  body: string;
  received_at: string;
}

const toView = (row: Row): InboundView => ({
  id: row.id,
  sender: row.sender,
  body: row.body,
  receivedAt: new Date(row.received_at),
});

/** Stores the SMS gateways receive, once each, and lists them. */
export class InboundService {
  constructor(
    private readonly em: EntityManager,
    private readonly events: EventsService,
    private readonly defaultCountryCode: string,
  ) {}

  /**
   * A sender as stored: E.164 when it is a phone number, else as sent (short codes and alphanumeric
   * senders such as "BANK" are real senders too).
   */
  private sender(raw: string): string {
    const trimmed = raw.trim();
    if (trimmed === "") throw missing("sender");
    if (trimmed.length > 32) throw invalid("sender is too long (at most 32 characters)");
    try {
      return normalizePhoneNumber(trimmed, this.defaultCountryCode, "sender");
    } catch {
      return trimmed;
    }
  }

  /**
   * Stores an SMS a gateway received, counts it on the gateway and emits `sms_received`. A device
   * that reports the same SMS again (same sender, text and timestamp; or, without a timestamp, within
   * two minutes) gets the first one's id back and nothing is stored twice.
   */
  async receive(
    gatewayId: number,
    input: { sender: string; message: string; timestamp: Date | undefined; reportId?: string | undefined },
  ): Promise<{ id: string; created: boolean }> {
    const sender = this.sender(input.sender);
    if (input.message.length > maxBodyLength)
      throw invalid(`message is too long (at most ${maxBodyLength} characters)`);
    const stored = await this.em
      .fork()
      .transactional(
        async (em): Promise<{ id: string; created: boolean; row?: Row & { device_id: string | null } }> => {
          if (input.timestamp === undefined && input.reportId === undefined) {
            const repeat: { id: string }[] = await em.execute(
              `select id from inbound_messages where gateway_id = ? and sender = ? and body = ?
              and created_at > now() - make_interval(secs => ?) order by created_at desc limit 1`,
              [gatewayId, sender, input.message, repeatWindowSeconds],
            );
            if (repeat[0] !== undefined) return { id: repeat[0].id, created: false };
          }
          const receivedAt = input.timestamp ?? new Date();
          // A report id names the SMS for good: reported again (after a reconnect), it is the same one.
          const identity =
            input.reportId !== undefined
              ? ["report", gatewayId, input.reportId]
              : [
                  gatewayId,
                  sender,
                  input.message,
                  input.timestamp === undefined ? `now:${receivedAt.toISOString()}` : receivedAt.toISOString(),
                ];
          const digest = createHash("sha256").update(JSON.stringify(identity)).digest("hex");
          // One statement stores the SMS, counts it on the gateway and names the gateway, or does
          // nothing for a repeat.
          const inserted: (Row & { device_id: string | null })[] = await em.execute(
            `with stored as (
             insert into inbound_messages (id, gateway_id, sender, body, received_at, dedupe_digest)
             values (?, ?, ?, ?, ?, ?) on conflict (dedupe_digest) do nothing
             returning id, gateway_id, sender, body, received_at),
           counted as (
             update gateways set messages_received_today = messages_received_today + 1,
                    total_messages_received = total_messages_received + 1, updated_at = now()
              where id = (select gateway_id from stored) returning device_id)
           select stored.id, stored.sender, stored.body, stored.received_at, counted.device_id
             from stored left join counted on true`,
            [newMessageId(), gatewayId, sender, input.message, receivedAt, digest],
          );
          const row = inserted[0];
          if (row === undefined) {
            const earlier: { id: string }[] = await em.execute(
              "select id from inbound_messages where dedupe_digest = ?",
              [digest],
            );
            return { id: earlier[0]?.id ?? "", created: false };
          }
          return { id: row.id, created: true, row };
        },
      );
    if (stored.row !== undefined) {
      await this.events.emit({
        event: "sms_received",
        message_id: stored.id,
        from: stored.row.sender,
        message: stored.row.body,
        received_at: new Date(stored.row.received_at).toISOString(),
        gateway_id: stored.row.device_id,
      });
    }
    return { id: stored.id, created: stored.created };
  }

  /**
   * One page of inbound SMS, newest first. `limit` above the maximum is clamped to it; the phone
   * number filter is normalised like every number.
   */
  async list(filters: {
    phoneNumber?: string | undefined;
    since?: Date | undefined;
    until?: Date | undefined;
    limit?: number | undefined;
    page?: number | undefined;
  }): Promise<InboundPage> {
    const limit = Math.min(filters.limit ?? defaultPageSize, maxPageSize);
    const page = filters.page ?? 1;
    if (limit < 1) throw invalid("limit must be at least 1");
    if (page < 1) throw invalid("page must be at least 1");
    const where: string[] = [];
    const params: unknown[] = [];
    if (filters.phoneNumber !== undefined && filters.phoneNumber.trim() !== "") {
      where.push("sender = ?");
      params.push(normalizePhoneNumber(filters.phoneNumber, this.defaultCountryCode, "phone_number"));
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
    const connection = this.em.getConnection();
    const [count] = await connection.execute<{ total: number }[]>(
      `select count(*)::int as total from inbound_messages ${clause}`,
      params,
    );
    const rows: Row[] = await connection.execute(
      `select id, sender, body, received_at from inbound_messages ${clause}
        order by received_at desc, id desc limit ? offset ?`,
      [...params, limit, (page - 1) * limit],
    );
    const total = count?.total ?? 0;
    return { messages: rows.map(toView), total, page, pages: Math.ceil(total / limit) };
  }
}
