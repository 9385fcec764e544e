import type { EntityManager } from "@mikro-orm/postgresql";
import { Sql, type Tx } from "../../db/sql.js";

/** The pending code a verification is checked against. */
export interface PendingRow {
  id: string;
  code_hash: string;
  attempts: number;
  max_attempts: number;
}

/** A rolling-hour limit on sends: codes created for a phone number, a client key, or a number prefix. */
export type OtpLimit = { phone: string } | { clientKeyId: number } | { prefix: string };

/** Every statement on `otp_codes`: the only code that writes it. */
export class OtpRepository {
  private readonly sql: Sql;

  constructor(em: EntityManager) {
    this.sql = new Sql(em);
  }

  transaction<T>(work: (em: Tx) => Promise<T>): Promise<T> {
    return this.sql.transaction(work);
  }

  /** Holds, until `em`'s transaction ends, the lock that lets one send at a time through per number. */
  async lockPhone(phone: string, em: Tx): Promise<void> {
    await this.sql.all("select pg_advisory_xact_lock(hashtext(?))", [`otp:${phone}`], em);
  }

  /** Of the last hour's codes under `limit`, how many (up to `max`) and when the oldest of those was made. */
  async recent(limit: OtpLimit, max: number, em: Tx): Promise<{ count: number; oldest: string | null }> {
    const [where, value] =
      "phone" in limit
        ? ["phone_number = ?", limit.phone]
        : "clientKeyId" in limit
          ? ["client_key_id = ?", limit.clientKeyId]
          : ["phone_number like ?", `${limit.prefix}%`];
    const row = await this.sql.one<{ count: number; oldest: string | null }>(
      `select count(*)::int as count, min(created_at) as oldest from (
         select created_at from otp_codes where ${where} and created_at > now() - interval '1 hour'
          order by created_at desc limit ?) recent`,
      [value, max],
      em,
    );
    return row ?? { count: 0, oldest: null };
  }

  /** Replaces the pending code for a number and purpose, if any. */
  async replacePending(phone: string, purpose: string, em: Tx): Promise<void> {
    await this.sql.all(
      "update otp_codes set status = 'replaced' where phone_number = ? and purpose = ? and status = 'pending'",
      [phone, purpose],
      em,
    );
  }

  async insert(
    code: {
      id: string;
      clientKeyId: number;
      phone: string;
      purpose: string;
      codeHash: string;
      maxAttempts: number;
      messageId: string;
      expiresAt: Date;
    },
    em: Tx,
  ): Promise<void> {
    await this.sql.all(
      `insert into otp_codes (id, client_key_id, phone_number, purpose, code_hash, max_attempts, message_id, expires_at)
       values (?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        code.id,
        code.clientKeyId,
        code.phone,
        code.purpose,
        code.codeHash,
        code.maxAttempts,
        code.messageId,
        code.expiresAt,
      ],
      em,
    );
  }

  /** The latest pending, unexpired code for a number (of a purpose, when given). */
  pending(phone: string, purpose: string | undefined): Promise<PendingRow | undefined> {
    return this.sql.one(
      `select id, code_hash, attempts, max_attempts from otp_codes
        where phone_number = ? and status = 'pending' and expires_at > now() ${purpose === undefined ? "" : "and purpose = ?"}
        order by created_at desc limit 1`,
      purpose === undefined ? [phone] : [phone, purpose],
    );
  }

  /** Verifies a code if it is still pending, unexpired and has attempts left; whether it did. */
  async markVerified(id: string): Promise<boolean> {
    const rows = await this.sql.all(
      `update otp_codes set status = 'verified', verified_at = now()
        where id = ? and status = 'pending' and expires_at > now() and attempts < max_attempts returning id`,
      [id],
    );
    return rows.length > 0;
  }

  /** Uses one attempt of a pending code (exhausted at the last); its attempts after, if it was pending. */
  countFailedAttempt(id: string): Promise<{ attempts: number; max_attempts: number } | undefined> {
    return this.sql.one(
      `update otp_codes set attempts = attempts + 1,
              status = case when attempts + 1 >= max_attempts then 'exhausted' else status end
        where id = ? and status = 'pending' and attempts < max_attempts returning attempts, max_attempts`,
      [id],
    );
  }

  /** Expires a pending code; its message's id, or undefined when it was not pending. */
  async expire(id: string): Promise<{ message_id: string | null } | undefined> {
    return this.sql.one(
      "update otp_codes set status = 'expired' where id = ? and status = 'pending' returning message_id",
      [id],
    );
  }

  /** Deletes codes that expired more than `retentionHours` ago; how many. */
  async deleteExpired(retentionHours: number): Promise<number> {
    const rows = await this.sql.all(
      "delete from otp_codes where expires_at < now() - make_interval(hours => ?) returning id",
      [retentionHours],
    );
    return rows.length;
  }

  /** Codes sent and verified since midnight `days - 1` days ago in `timeZone`. */
  async figures(timeZone: string, days: number): Promise<{ sent: number; verified: number }> {
    const row = await this.sql.one<{ sent: number; verified: number }>(
      `with today as (select (date_trunc('day', now() at time zone ?) - make_interval(days => ?)) at time zone ? as start)
       select (select count(*) from otp_codes, today where created_at >= today.start)::int as sent,
              (select count(*) from otp_codes, today where verified_at >= today.start)::int as verified`,
      [timeZone, days - 1, timeZone],
    );
    return row ?? { sent: 0, verified: 0 };
  }
}
