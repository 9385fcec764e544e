import { createHmac, hkdfSync, randomInt, timingSafeEqual } from "node:crypto";
import type { Logger } from "pino";
import type { Tx } from "../../db/sql.js";
import { DomainError, invalid } from "../../shared/errors.js";
import { randomToken } from "../../shared/ids.js";
import type { Metrics } from "../../shared/metrics.js";
import { normalizePhoneNumber } from "../../shared/phone.js";
import type { Caller, MessageLifecycle, MessagesService } from "../messages/index.js";
import type { OtpLimit, OtpRepository } from "./otp.repository.js";

/** How OTPs are limited and worded; from configuration. */
export interface OtpOptions {
  maxPerPhonePerHour: number;
  maxPerKeyPerHour: number;
  maxPerPrefixPerHour: number;
  prefixDigits: number;
  maxAttempts: number;
  retentionHours: number;
  messageTemplate: string;
  defaultCountryCode: string;
}

/** Starts and signals OTP workflows; implemented over Temporal in `src/temporal`. */
export interface OtpWorkflows {
  start(input: { otpId: string; messageId: string; expiresAtMs: number }): Promise<void>;
  verified(otpId: string): Promise<void>;
}

/** The verdict on a code. */
export type Verdict = { verified: true } | { verified: false; attemptsRemaining: number };

const invalidCode = "Invalid or expired OTP";

export { invalidCode };

/** Sends and verifies one-time passwords. Only a keyed hash of each code is stored. */
export class OneTimePasswords {
  private readonly hashKey: Buffer;

  constructor(
    private readonly repository: OtpRepository,
    private readonly messages: Pick<MessagesService, "storeWithin">,
    private readonly lifecycle: MessageLifecycle,
    secretKeyBase: string,
    private readonly options: OtpOptions,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    private readonly workflows: OtpWorkflows,
  ) {
    this.hashKey = Buffer.from(hkdfSync("sha256", secretKeyBase, "smsgw", "otp codes v1", 32));
  }

  /** The keyed hash of a code, bound to its OTP so that equal codes hash apart. */
  private hash(otpId: string, code: string): string {
    return createHmac("sha256", this.hashKey).update(`${otpId}:${code}`).digest("hex");
  }

  private purposeOf(raw: string | undefined): string {
    const purpose = (raw ?? "").trim() || "authentication";
    if (purpose.length > 64 || !/^[\p{L}\p{N} _.-]+$/u.test(purpose)) {
      throw invalid("purpose must be 1 to 64 letters, digits, spaces, dots, dashes or underscores");
    }
    return purpose;
  }

  /** Refuses the send when a rolling-hour limit is reached, saying when to try again. */
  private async checkLimits(em: Tx, caller: Caller, phone: string): Promise<void> {
    const prefix = phone.slice(0, 1 + this.options.prefixDigits);
    const limits: [OtpLimit, number][] = [
      [{ phone }, this.options.maxPerPhonePerHour],
      [{ clientKeyId: caller.keyId }, this.options.maxPerKeyPerHour],
      [{ prefix }, this.options.maxPerPrefixPerHour],
    ];
    for (const [scope, limit] of limits) {
      const row = await this.repository.recent(scope, limit, em);
      if (row.count >= limit && row.oldest !== null) {
        const retryAfterSeconds = Math.max(
          1,
          Math.ceil((new Date(row.oldest).getTime() + 3_600_000 - Date.now()) / 1000),
        );
        throw new DomainError("rate_limited", "Too many OTP requests; try again later", retryAfterSeconds);
      }
    }
  }

  /**
   * Generates a code, stores its hash and the SMS carrying it in one transaction (replacing an
   * earlier code for the same number and purpose), then starts the OTP's workflow, which sends it.
   */
  async send(
    caller: Caller,
    input: {
      phoneNumber: string;
      purpose?: string | undefined;
      expiryMinutes?: number | undefined;
      codeLength?: number | undefined;
    },
  ): Promise<{ otpId: string; messageId: string; expiresAt: Date }> {
    const phone = normalizePhoneNumber(input.phoneNumber, this.options.defaultCountryCode, "phone_number");
    const purpose = this.purposeOf(input.purpose);
    const minutes = input.expiryMinutes ?? 5;
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > 60) throw invalid("expiry_minutes must be from 1 to 60");
    const length = input.codeLength ?? 6;
    if (!Number.isInteger(length) || length < 4 || length > 10) throw invalid("code_length must be from 4 to 10");
    const code = String(randomInt(0, 10 ** length)).padStart(length, "0");
    const otpId = `otp_${randomToken(24)}`;
    const expiresAt = new Date(Date.now() + minutes * 60_000);
    const textWith = (shown: string) =>
      this.options.messageTemplate
        .replaceAll("{code}", shown)
        .replaceAll("{purpose}", purpose)
        .replaceAll("{minutes}", String(minutes));

    const messageId = await this.repository.transaction(async (em) => {
      // One send at a time per number, so the limits count exactly under concurrency.
      await this.repository.lockPhone(phone, em);
      await this.checkLimits(em, caller, phone);
      await this.repository.replacePending(phone, purpose, em);
      // What is stored, listed and sent to webhooks carries the code masked; the phone alone gets it.
      const message = await this.messages.storeWithin(em, caller, {
        to: phone,
        message: textWith("*".repeat(length)),
        secretMessage: textWith(code),
        validitySeconds: minutes * 60,
      });
      await this.repository.insert(
        {
          id: otpId,
          clientKeyId: caller.keyId,
          phone,
          purpose,
          codeHash: this.hash(otpId, code),
          maxAttempts: this.options.maxAttempts,
          messageId: message.id,
          expiresAt,
        },
        em,
      );
      return message.id;
    });
    try {
      await this.workflows.start({ otpId, messageId, expiresAtMs: expiresAt.getTime() });
    } catch (error) {
      // The code is stored; its SMS is still sent by the message sweeper, and it expires by time.
      this.logger.warn({ err: error, otpId }, "starting the OTP workflow failed");
    }
    this.metrics.otpEvent("sent");
    return { otpId, messageId, expiresAt };
  }

  /**
   * Checks a code against the number's pending code (of `purpose`, or the latest). A right code
   * verifies once; each wrong one uses an attempt, counted by one conditional update so concurrent
   * checks never exceed the limit. Works from the database alone, whatever Temporal is doing.
   */
  async verify(input: { phoneNumber: string; code: string; purpose?: string | undefined }): Promise<Verdict> {
    const verdict = await this.check(input);
    this.metrics.otpEvent(verdict.verified ? "verified" : "failed");
    return verdict;
  }

  private async check(input: { phoneNumber: string; code: string; purpose?: string | undefined }): Promise<Verdict> {
    const phone = normalizePhoneNumber(input.phoneNumber, this.options.defaultCountryCode, "phone_number");
    const purpose =
      input.purpose === undefined || input.purpose.trim() === "" ? undefined : this.purposeOf(input.purpose);
    const pending = await this.repository.pending(phone, purpose);
    if (pending === undefined) return { verified: false, attemptsRemaining: 0 };
    const given = Buffer.from(this.hash(pending.id, input.code.trim()), "hex");
    const right = timingSafeEqual(given, Buffer.from(pending.code_hash, "hex"));
    if (right) {
      if (await this.repository.markVerified(pending.id)) {
        this.workflows
          .verified(pending.id)
          .catch((error: unknown) => this.logger.warn({ err: error }, "OTP verified signal failed"));
        return { verified: true };
      }
      return { verified: false, attemptsRemaining: 0 };
    }
    const counted = await this.repository.countFailedAttempt(pending.id);
    return { verified: false, attemptsRemaining: counted === undefined ? 0 : counted.max_attempts - counted.attempts };
  }

  /** Marks a code expired if it is still pending, and cancels its SMS if no gateway sent it yet. */
  async expire(otpId: string): Promise<boolean> {
    const expired = await this.repository.expire(otpId);
    const messageId = expired?.message_id;
    if (messageId) await this.lifecycle.markExpired(messageId);
    return expired !== undefined;
  }

  /** Deletes codes that ended (or expired) longer ago than the retention; returns how many. */
  async cleanUp(): Promise<number> {
    return this.repository.deleteExpired(this.options.retentionHours);
  }

  /** OTP figures of the last `days` days, today included ("today" starts at midnight in `timeZone`). */
  async stats(
    timeZone: string,
    days = 1,
  ): Promise<{ sentToday: number; verifiedToday: number; verificationRate: number }> {
    const { sent, verified } = await this.repository.figures(timeZone, days);
    return {
      sentToday: sent,
      verifiedToday: verified,
      verificationRate: sent === 0 ? 0 : Math.round((verified / sent) * 10_000) / 100,
    };
  }
}
