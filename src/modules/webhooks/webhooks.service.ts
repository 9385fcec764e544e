import type { Logger } from "pino";
import { DomainError, invalid, missing } from "../../shared/errors.js";
import { randomToken } from "../../shared/ids.js";
import type { Metrics } from "../../shared/metrics.js";
import type { SecretBox } from "../../shared/secret-box.js";
import { context, contextOf } from "../../tracing.js";
import { type EventPayload, type EventsService, type EventType, eventTypes } from "../events/index.js";
import { parseTargetUrl, resolveTarget, TargetRefused } from "./target-guard.js";
import type { DeliveryRow, SmsGateWebhookInput, WebhookRepository, WebhookRow } from "./webhook.repository.js";
import { type AttemptResult, sendWebhook, signatureHeaders, smsGateSignatureHeaders } from "./webhook-sender.js";

/** A webhook endpoint as the API shows it: the secret itself is never shown. */
export interface WebhookView {
  id: number;
  url: string;
  events: EventType[];
  hasSecret: boolean;
  active: boolean;
  createdAt: Date;
  updatedAt: Date;
}

/** One event's delivery to one endpoint, with every attempt. */
export interface DeliveryView {
  id: string;
  event: string;
  status: "pending" | "succeeded" | "failed";
  createdAt: Date;
  completedAt: Date | null;
  attempts: { attempt: number; startedAt: Date; statusCode: number | null; durationMs: number; error: string | null }[];
}

/** Starts delivery workflows; implemented over Temporal in `src/temporal`. */
export interface WebhookWorkflows {
  start(deliveryIds: readonly string[]): Promise<void>;
}

const toView = (row: WebhookRow): WebhookView => ({
  id: row.id,
  url: row.url,
  events: row.events,
  hasSecret: row.secret_encrypted !== null,
  active: row.active,
  createdAt: new Date(row.created_at),
  updatedAt: new Date(row.updated_at),
});

/** SMSGate's event names (all ten the app and client-go know), each with the smsgw event it is. */
export const smsGateEvents = {
  "sms:received": "sms_received",
  "sms:data-received": "sms_data_received",
  "mms:received": "mms_received",
  "mms:downloaded": "mms_downloaded",
  "sms:sent": "sms_sent",
  "sms:delivered": "sms_delivered",
  "sms:failed": "sms_failed",
  "sms:cancelled": "sms_cancelled",
  "system:ping": "system_ping",
  "app:started": "app_started",
} as const satisfies Record<string, EventType>;

/** The events a phone posts as it sent them (its fields are the payload, named by the phone). */
const relayedEvents: readonly EventType[] = ["system_ping", "mms_received", "mms_downloaded", "app_started"];
export type SmsGateEvent = keyof typeof smsGateEvents;
const smsGateEventOf = Object.fromEntries(Object.entries(smsGateEvents).map(([name, type]) => [type, name])) as Record<
  EventType,
  SmsGateEvent | undefined
>;

/** A webhook as SMSGate's API shows it (`smsgateway.Webhook`). */
export interface SmsGateWebhookView {
  id: string;
  deviceId: string | null;
  url: string;
  event: SmsGateEvent;
}

const toSmsGateView = (row: WebhookRow): SmsGateWebhookView => ({
  id: row.ext_id ?? String(row.id),
  deviceId: row.device_id,
  url: row.url,
  event: smsGateEventOf[row.events[0] as EventType] ?? "sms:received",
});

/** GSM 03.38's basic set and its extension (which takes two septets). */
const gsmBasic =
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const gsmExtended = "^{}\\[~]|€\f";

/** How many SMS a text takes (SMSGate's `partsCount`): 160/153 GSM septets, else 70/67 UCS-2 units. */
export function partsOf(text: string): number {
  let septets = 0;
  for (const char of text) {
    if (gsmBasic.includes(char)) septets += 1;
    else if (gsmExtended.includes(char)) septets += 2;
    else {
      const units = text.length;
      return units <= 70 ? 1 : Math.ceil(units / 67);
    }
  }
  return septets <= 160 ? 1 : Math.ceil(septets / 153);
}

export interface WebhookOptions {
  allowPrivateTargets: boolean;
  timeoutMs: number;
}

/** Webhook endpoints, the fan-out of events to them, and each HTTP attempt. */
export class WebhookDispatcher {
  private readonly options: WebhookOptions;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private readonly workflows: WebhookWorkflows;
  /** With tracing on: how to find the trace a message was accepted in. */
  private readonly traceOf: ((messageId: string) => Promise<string | null>) | undefined;
  /** SMSGate's id of the logical message a message is a recipient of, and its SIM (the messages module's). */
  private readonly groupOf: (messageId: string) => Promise<{ groupId: string; simNumber: number | null } | undefined>;

  /** Made, it hands every event recorded from now on to the endpoints that want it. */
  constructor(
    private readonly repository: WebhookRepository,
    private readonly secrets: SecretBox,
    private readonly events: Pick<EventsService, "listen" | "markDispatched" | "undispatched">,
    parts: {
      options: WebhookOptions;
      logger: Logger;
      metrics: Metrics;
      workflows: WebhookWorkflows;
      traceOf?: (messageId: string) => Promise<string | null>;
      groupOf: (messageId: string) => Promise<{ groupId: string; simNumber: number | null } | undefined>;
    },
  ) {
    this.options = parts.options;
    this.logger = parts.logger;
    this.metrics = parts.metrics;
    this.workflows = parts.workflows;
    this.traceOf = parts.traceOf;
    this.groupOf = parts.groupOf;
    events.listen(({ id, payload }) => {
      // In the background: a slow Temporal never delays the code that emitted the event. Anything
      // not dispatched here the sweeper dispatches.
      this.dispatch(id, payload).catch((error: unknown) =>
        this.logger.warn({ err: error, eventId: id }, "webhook dispatch failed; the sweeper will retry"),
      );
    });
  }

  private checkEvents(events: string[]): EventType[] {
    if (events.length === 0) throw missing("events");
    const unknown = events.filter((event) => !(eventTypes as readonly string[]).includes(event));
    if (unknown.length > 0)
      throw invalid(`events has unknown event ${unknown[0]}; known events: ${eventTypes.join(", ")}`);
    return [...new Set(events)] as EventType[];
  }

  private async checkUrl(raw: string): Promise<string> {
    if (raw.trim() === "") throw missing("url");
    if (raw.length > 2048) throw invalid("url is too long (at most 2048 characters)");
    try {
      parseTargetUrl(raw);
      await resolveTarget(raw, this.options.allowPrivateTargets);
    } catch (error) {
      if (error instanceof TargetRefused) throw invalid(error.message);
      throw error;
    }
    return raw;
  }

  private checkSecret(secret: string): string {
    if (secret.length > 255) throw invalid("secret_key is too long (at most 255 characters)");
    return secret;
  }

  async create(input: {
    url: string;
    events: string[];
    secretKey?: string | undefined;
    active?: boolean | undefined;
  }): Promise<WebhookView> {
    const url = await this.checkUrl(input.url);
    const events = this.checkEvents(input.events);
    const secret =
      input.secretKey === undefined || input.secretKey === ""
        ? null
        : this.secrets.seal(this.checkSecret(input.secretKey));
    const row = await this.repository.insert(url, events, secret, input.active ?? true);
    if (row === undefined) throw new Error("no webhook stored");
    return toView(row);
  }

  /**
   * Stores a webhook of SMSGate's API for credential `clientKeyId` (replacing the one with the same
   * id), signed with the account's key `signingKey`. The URL must be HTTPS, as SMSGate asks, unless
   * private targets are allowed (a test's local receiver).
   */
  async upsertSmsGate(
    input: Omit<SmsGateWebhookInput, "events" | "secret"> & { event: string; signingKey: string },
  ): Promise<SmsGateWebhookView> {
    const type = (smsGateEvents as Record<string, EventType>)[input.event];
    if (type === undefined)
      throw invalid(
        `event must be one of ${Object.keys(smsGateEvents).join(", ")} (smsgw raises no other of SMSGate's events)`,
      );
    const url = await this.checkUrl(input.url);
    if (!url.startsWith("https://") && !this.options.allowPrivateTargets) throw invalid("url must be an https:// URL");
    const row = await this.repository.upsertSmsGate({
      clientKeyId: input.clientKeyId,
      extId: input.extId,
      deviceId: input.deviceId,
      url,
      events: [type],
      secret: this.secrets.seal(input.signingKey),
    });
    if (row === undefined) throw new Error("no webhook stored");
    return toSmsGateView(row);
  }

  /** A credential's webhooks of SMSGate's API. */
  async listSmsGate(clientKeyId: number): Promise<SmsGateWebhookView[]> {
    return (await this.repository.listSmsGate(clientKeyId)).map(toSmsGateView);
  }

  /** Deletes a credential's webhook of SMSGate's API; deleting one that is not there changes nothing. */
  async deleteSmsGate(clientKeyId: number, extId: string): Promise<void> {
    await this.repository.deleteSmsGate(clientKeyId, extId);
  }

  /** The account's webhooks are signed with its new key from now on. */
  async resignSmsGate(clientKeyId: number, signingKey: string): Promise<void> {
    await this.repository.resignSmsGate(clientKeyId, this.secrets.seal(signingKey));
  }

  /**
   * A delivery as SMSGate sends it: `{id, webhookId, event, deviceId, payload}`, the payload in the
   * app's shape (client-go's `dto_webhooks.go`): a message's events name it by its SMSGate id, with
   * `sender` (the phone's own number: smsgw does not know it, null), `recipient`, `simNumber` and the
   * deprecated `phoneNumber`; a received SMS has its `sender`, `recipient` (the phone's number, when
   * it told) and `simNumber`; what a phone posts of its own (pings, MMS, starts) is as it posted it.
   */
  private async smsGateBody(row: WebhookRow, deliveryId: string, event: EventPayload): Promise<string> {
    return JSON.stringify({
      id: deliveryId,
      webhookId: row.ext_id ?? String(row.id),
      event: smsGateEventOf[event.event],
      deviceId: event.gateway_id ?? "",
      payload: await this.smsGatePayload(event),
    });
  }

  private async smsGatePayload(event: EventPayload): Promise<Record<string, unknown>> {
    const at = (field: string) => (typeof event[field] === "string" ? event[field] : new Date().toISOString());
    if (relayedEvents.includes(event.event)) {
      const { event: _event, gateway_id: _gateway, ...posted } = event;
      return event.event === "system_ping" ? { health: posted.health ?? {} } : posted;
    }
    if (event.event === "sms_received" || event.event === "sms_data_received") {
      return {
        messageId: event.message_id ?? event.export_of,
        ...(event.event === "sms_received" ? { message: event.message } : { data: event.message }),
        phoneNumber: event.from,
        sender: event.from,
        recipient: event.recipient ?? null,
        simNumber: event.sim_number ?? null,
        receivedAt: at("received_at"),
      };
    }
    const group = event.message_id === undefined ? undefined : await this.groupOf(event.message_id);
    const base = {
      messageId: group?.groupId ?? event.message_id,
      phoneNumber: event.to,
      sender: null,
      recipient: event.to,
      simNumber: group?.simNumber ?? null,
    };
    switch (event.event) {
      case "sms_sent":
        return { ...base, partsCount: partsOf(String(event.message ?? "")), sentAt: at("sent_at") };
      case "sms_delivered":
        return { ...base, deliveredAt: at("delivered_at") };
      case "sms_cancelled":
        return { ...base, cancelledAt: at("cancelled_at") };
      default:
        return { ...base, failedAt: at("failed_at"), reason: event.error_message ?? "" };
    }
  }

  async list(): Promise<WebhookView[]> {
    return (await this.repository.list()).map(toView);
  }

  private async row(id: number): Promise<WebhookRow> {
    const row = await this.repository.find(id);
    if (row === undefined) throw new DomainError("not_found", "Webhook not found");
    return row;
  }

  /** Changes what is given; an empty `secretKey` removes the secret. */
  async update(
    id: number,
    input: {
      url?: string | undefined;
      events?: string[] | undefined;
      secretKey?: string | undefined;
      active?: boolean | undefined;
    },
  ): Promise<WebhookView> {
    const current = await this.row(id);
    const url = input.url === undefined ? current.url : await this.checkUrl(input.url);
    const events =
      input.events === undefined || input.events.length === 0 ? current.events : this.checkEvents(input.events);
    let secret = current.secret_encrypted;
    if (input.secretKey !== undefined)
      secret = input.secretKey === "" ? null : this.secrets.seal(this.checkSecret(input.secretKey));
    const row = await this.repository.update(id, { url, events, secret, active: input.active ?? current.active });
    if (row === undefined) throw new DomainError("not_found", "Webhook not found");
    return toView(row);
  }

  /** Deletes an endpoint and its delivery history; deliveries under way stop at their next attempt. */
  async delete(id: number): Promise<void> {
    if (!(await this.repository.delete(id))) throw new DomainError("not_found", "Webhook not found");
  }

  /** Sends a `webhook_test` event to the endpoint once, now, and reports how it went. */
  async test(id: number): Promise<AttemptResult> {
    const row = await this.row(id);
    const body = JSON.stringify({ event: "webhook_test", webhook_id: row.id, timestamp: new Date().toISOString() });
    return this.post(row, body, `test_${randomToken(12)}`, "webhook_test");
  }

  /** The latest deliveries to an endpoint, newest first, with their attempts. */
  async deliveries(id: number, limit: number): Promise<DeliveryView[]> {
    await this.row(id);
    const deliveries = await this.repository.deliveries(id, Math.min(Math.max(limit, 1), 100));
    return this.withAttempts(deliveries);
  }

  /** Every delivery of a message's events, oldest first, with its endpoint and attempts. */
  async deliveriesOfMessage(messageId: string): Promise<{ webhookId: number; url: string; delivery: DeliveryView }[]> {
    const rows = await this.repository.deliveriesOfMessage(messageId);
    const views = await this.withAttempts(rows);
    return rows.flatMap((row, i) => {
      const delivery = views[i];
      return delivery === undefined ? [] : [{ webhookId: row.webhook_id, url: row.url, delivery }];
    });
  }

  private async withAttempts(deliveries: DeliveryRow[]): Promise<DeliveryView[]> {
    if (deliveries.length === 0) return [];
    const attempts = await this.repository.attempts(deliveries.map((delivery) => delivery.id));
    return deliveries.map((delivery) => ({
      id: delivery.id,
      event: delivery.event,
      status: delivery.status,
      createdAt: new Date(delivery.created_at),
      completedAt: delivery.completed_at === null ? null : new Date(delivery.completed_at),
      attempts: attempts
        .filter((attempt) => attempt.delivery_id === delivery.id)
        .map((attempt) => ({
          attempt: attempt.attempt,
          startedAt: new Date(attempt.started_at),
          statusCode: attempt.status_code,
          durationMs: attempt.duration_ms,
          error: attempt.error,
        })),
    }));
  }

  /**
   * Creates one delivery per active endpoint that wants the event (finding any still pending from an
   * earlier try), and starts their workflows; an event no endpoint wants is marked dispatched.
   */
  async dispatch(eventId: number, payload: EventPayload): Promise<void> {
    const rows = await this.repository.createDeliveries(eventId, payload.event);
    if (rows.length === 0) {
      await this.events.markDispatched(eventId);
      return;
    }
    const start = () => this.workflows.start(rows.map((row) => row.id));
    // Traced: the deliveries of a message's events join the trace the message was accepted in.
    const messageId = payload.message_id;
    if (this.traceOf !== undefined && messageId !== undefined) {
      await context.with(contextOf(await this.traceOf(messageId)), start);
    } else await start();
    await this.events.markDispatched(eventId);
    this.logger.debug({ eventId, deliveries: rows.length }, "webhook deliveries started");
  }

  /** Dispatches events recorded but not handed to endpoints (the process died first). */
  async dispatchPending(olderThanSeconds: number): Promise<number> {
    const events = await this.events.undispatched(olderThanSeconds, 500);
    for (const event of events) await this.dispatch(event.id, event.payload);
    return events.length;
  }

  private async post(row: WebhookRow, body: string, deliveryId: string, event: string): Promise<AttemptResult> {
    const headers: Record<string, string> = { "x-webhook-event": event, "x-webhook-delivery": deliveryId };
    if (row.secret_encrypted !== null) {
      Object.assign(
        headers,
        signatureHeaders(this.secrets.open(row.secret_encrypted), body, Math.floor(Date.now() / 1000)),
      );
    }
    return sendWebhook({
      url: row.url,
      body,
      headers,
      timeoutMs: this.options.timeoutMs,
      allowPrivate: this.options.allowPrivateTargets,
    });
  }

  /** Signed as SMSGate signs: `X-Signature`, the hex HMAC-SHA256 of the body and `X-Timestamp`. */
  private postSmsGate(row: WebhookRow, body: string): Promise<AttemptResult> {
    const secret = row.secret_encrypted === null ? null : this.secrets.open(row.secret_encrypted);
    return sendWebhook({
      url: row.url,
      body,
      headers: secret === null ? {} : smsGateSignatureHeaders(secret, body, Math.floor(Date.now() / 1000)),
      timeoutMs: this.options.timeoutMs,
      allowPrivate: this.options.allowPrivateTargets,
    });
  }

  /**
   * Makes attempt number `attempt` of a delivery and records it. A delivery whose endpoint was
   * deleted or switched off gives up.
   */
  async attempt(deliveryId: string, attempt: number): Promise<AttemptResult> {
    const delivery = await this.repository.delivery(deliveryId);
    if (delivery === undefined || delivery.status !== "pending") {
      return {
        outcome: "give_up",
        statusCode: null,
        durationMs: 0,
        error: "the delivery no longer exists",
        retryAfterMs: null,
      };
    }
    const row = await this.repository.find(delivery.webhook_id);
    if (row === undefined || !row.active) {
      return {
        outcome: "give_up",
        statusCode: null,
        durationMs: 0,
        error: "the endpoint was deleted or switched off",
        retryAfterMs: null,
      };
    }
    const startedAt = new Date();
    const result =
      row.dialect === "smsgate"
        ? await this.postSmsGate(row, await this.smsGateBody(row, deliveryId, delivery.payload))
        : await this.post(row, JSON.stringify(delivery.payload), deliveryId, delivery.event);
    this.metrics.webhookAttempt(result.outcome, result.durationMs);
    await this.repository.recordAttempt(deliveryId, attempt, startedAt, result);
    return result;
  }

  /** Ends a delivery. */
  async finish(deliveryId: string, status: "succeeded" | "failed"): Promise<void> {
    if (await this.repository.finish(deliveryId, status)) this.metrics.webhookDelivery(status);
  }
}
