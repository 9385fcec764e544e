import type { Logger } from "pino";
import { DomainError, invalid, missing } from "../../shared/errors.js";
import { randomToken } from "../../shared/ids.js";
import type { Metrics } from "../../shared/metrics.js";
import type { SecretBox } from "../../shared/secret-box.js";
import { context, contextOf } from "../../tracing.js";
import { type EventPayload, type EventsService, type EventType, eventTypes } from "../events/index.js";
import { parseTargetUrl, resolveTarget, TargetRefused } from "./target-guard.js";
import type { DeliveryRow, WebhookRepository, WebhookRow } from "./webhook.repository.js";
import { type AttemptResult, sendWebhook, signatureHeaders } from "./webhook-sender.js";

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
    },
  ) {
    this.options = parts.options;
    this.logger = parts.logger;
    this.metrics = parts.metrics;
    this.workflows = parts.workflows;
    this.traceOf = parts.traceOf;
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
    const result = await this.post(row, JSON.stringify(delivery.payload), deliveryId, delivery.event);
    this.metrics.webhookAttempt(result.outcome, result.durationMs);
    await this.repository.recordAttempt(deliveryId, attempt, startedAt, result);
    return result;
  }

  /** Ends a delivery. */
  async finish(deliveryId: string, status: "succeeded" | "failed"): Promise<void> {
    if (await this.repository.finish(deliveryId, status)) this.metrics.webhookDelivery(status);
  }
}
