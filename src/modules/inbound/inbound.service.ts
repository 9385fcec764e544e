import { createHash } from "node:crypto";
import type { Tx } from "../../db/sql.js";
import { invalid, missing } from "../../shared/errors.js";
import { newMessageId } from "../../shared/ids.js";
import { normalizePhoneNumber } from "../../shared/phone.js";
import type { EventsService } from "../events/index.js";
import type { InboundRepository, InboundRow } from "./inbound.repository.js";

/** An inbound SMS as the API lists it. */
export interface InboundView {
  id: string;
  sender: string;
  body: string;
  receivedAt: Date;
  /** The device id of the gateway that received it. */
  deviceId: string | null;
}

/** An SMS a gateway received, as it reports it. */
export interface ReportedSms {
  sender: string;
  message: string;
  /** When the phone received it (now, when it does not say). */
  timestamp: Date | undefined;
  /** The phone's own id of it: reported again, it is the same one. */
  reportId?: string | undefined;
  /** A data SMS (its `message` is base64): the SMSGate app's `sms:data-received`. */
  kind?: "sms" | "data" | undefined;
  /** The phone's own number that received it, and its SIM slot, when the phone knows them. */
  recipient?: string | undefined;
  simNumber?: number | undefined;
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

const toView = (row: InboundRow): InboundView => ({
  id: row.id,
  sender: row.sender,
  body: row.body,
  receivedAt: new Date(row.received_at),
  deviceId: row.device_id ?? null,
});

/** Stores the SMS gateways receive, once each, and lists them. */
export class InboundService {
  constructor(
    private readonly repository: InboundRepository,
    /** The gateways' owner, which counts what each received. */
    private readonly gateways: { countReceived(gatewayId: number, em: Tx): Promise<string | null> },
    private readonly events: Pick<EventsService, "emit">,
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
  async receive(gatewayId: number, input: ReportedSms): Promise<{ id: string; created: boolean }> {
    const sender = this.sender(input.sender);
    if (input.message.length > maxBodyLength)
      throw invalid(`message is too long (at most ${maxBodyLength} characters)`);
    const stored = await this.repository.transaction(
      async (em): Promise<{ id: string; created: boolean; row?: InboundRow & { device_id: string | null } }> => {
        if (input.timestamp === undefined && input.reportId === undefined) {
          const repeat = await this.repository.recentRepeat(gatewayId, sender, input.message, repeatWindowSeconds, em);
          if (repeat !== undefined) return { id: repeat, created: false };
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
        // Stored and counted on its gateway together, or neither for a repeat.
        const row = await this.repository.insert(
          { id: newMessageId(), gatewayId, sender, body: input.message, receivedAt, digest },
          em,
        );
        if (row === undefined) return { id: (await this.repository.idByDigest(digest, em)) ?? "", created: false };
        const deviceId = await this.gateways.countReceived(gatewayId, em);
        return { id: row.id, created: true, row: { ...row, device_id: deviceId } };
      },
    );
    if (stored.row !== undefined) {
      // A data SMS (SMSGate's `sms:data-received`) is an event of SMSGate's webhooks only.
      await this.events.emit({
        event: input.kind === "data" ? "sms_data_received" : "sms_received",
        message_id: stored.id,
        from: stored.row.sender,
        message: stored.row.body,
        received_at: new Date(stored.row.received_at).toISOString(),
        gateway_id: stored.row.device_id,
        ...(input.recipient === undefined ? {} : { recipient: input.recipient }),
        ...(input.simNumber === undefined ? {} : { sim_number: input.simNumber }),
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
    deviceId?: string | undefined;
    accountKeyId?: number | undefined;
    since?: Date | undefined;
    until?: Date | undefined;
    limit?: number | undefined;
    page?: number | undefined;
    /** Rows to skip instead of pages (then `page` is ignored). */
    offset?: number | undefined;
  }): Promise<InboundPage> {
    const limit = Math.min(filters.limit ?? defaultPageSize, maxPageSize);
    const page = filters.page ?? 1;
    if (limit < 1) throw invalid("limit must be at least 1");
    if (page < 1) throw invalid("page must be at least 1");
    const { rows, total } = await this.repository.page({
      ...(filters.phoneNumber !== undefined && filters.phoneNumber.trim() !== ""
        ? { sender: normalizePhoneNumber(filters.phoneNumber, this.defaultCountryCode, "phone_number") }
        : {}),
      ...(filters.deviceId === undefined || filters.deviceId === "" ? {} : { deviceId: filters.deviceId }),
      ...(filters.accountKeyId === undefined ? {} : { accountKeyId: filters.accountKeyId }),
      ...(filters.since === undefined ? {} : { since: filters.since }),
      ...(filters.until === undefined ? {} : { until: filters.until }),
      limit,
      offset: filters.offset ?? (page - 1) * limit,
    });
    return { messages: rows.map(toView), total, page, pages: Math.ceil(total / limit) };
  }
}
