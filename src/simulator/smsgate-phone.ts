// A phone running SMSGate's Android app in private-server mode, as the app behaves (read from
// github.com/capcom6/android-sms-gateway: `GatewayApi.kt` for the calls and shapes,
// `GatewayService.kt` and the workers for their order, `SSEManager.kt` for the events stream,
// `MessagesService.kt` and `SendStateWorker.kt` for the states and the full snapshots it reports).
// It stands in for a real phone in tests, benchmarks and chaos runs. Received SMS go out as the
// app's webhooks (`WebHooksService.emit`, signed as `PayloadSingingPlugin` signs them).

import { createHmac, randomUUID } from "node:crypto";

/** A message as the app reads it from `GET /message`. */
export interface FetchedMessage {
  id: string;
  message?: string;
  textMessage?: { text: string };
  dataMessage?: { data: string; port: number };
  phoneNumbers: string[];
  simNumber?: number;
  withDeliveryReport?: boolean;
  isEncrypted?: boolean;
  priority?: number;
  validUntil?: string;
  createdAt?: string;
  state?: string;
}

/** How the simulated phone behaves. */
export interface SmsGatePhoneBehaviour {
  /** Sends what it fetches and reports it (Processed, Sent, then Delivered); when false, the caller reports. */
  autoReport: boolean;
  /** Reports Failed (with the app's "Send result" error) instead of Sent. */
  fail: boolean;
  /** Delay between taking a message and reporting it sent. */
  sendLatencyMs: number;
  /** Opens the events stream (the app does when it has no push token: "SSE only"). */
  events: boolean;
  /** The order it asks messages in (`messages.processing_order`). */
  order: "lifo" | "fifo";
  /**
   * How long it waits before sending a report again that got no answer (the app's
   * `SendStateWorker` retries with backoff), and before opening its events stream again once it
   * ended (the app's `SSEManager`: 5 s, then longer). 0: it does neither.
   */
  retryMs: number;
  /** How often it pulls its messages besides the events (the app's `PullMessagesWorker`); 0: never. */
  pollMs: number;
}

export const defaultSmsGateBehaviour: SmsGatePhoneBehaviour = {
  autoReport: true,
  fail: false,
  sendLatencyMs: 20,
  events: true,
  order: "lifo",
  retryMs: 0,
  pollMs: 0,
};

type State = "Pending" | "Processed" | "Sent" | "Delivered" | "Failed" | "Cancelled";

/** What the phone knows of a message: its state and when it reached each one. */
interface Local {
  message: FetchedMessage;
  state: State;
  states: Partial<Record<State, string>>;
  error: string | null;
}

/** A simulated SMSGate phone. */
export class SmsGatePhone {
  /** The device id and token the server gave at registration (kept, as the app keeps them). */
  deviceId: string | undefined;
  token: string | undefined;
  login: string | undefined;
  password: string | undefined;
  readonly messages = new Map<string, Local>();
  /** SSE events received, by name, in order. */
  readonly events: { name: string; data: string }[] = [];
  /** When each message was first seen in a fetch (ms since epoch). */
  readonly fetchedAt = new Map<string, number>();
  /** Registrations made (a 401 on `PATCH /device` makes the app register again, as a new device). */
  registrations = 0;
  /** The webhooks the server asked for (`GET /webhooks`), and its settings (`GET /settings`). */
  webhooks: { id: string; url: string; event: string }[] = [];
  settings: Record<string, Record<string, unknown>> = {};
  /** The SMS the phone received (its inbox), which an export asks it to post again. */
  readonly inbox: { event: "sms:received" | "sms:data-received"; payload: Record<string, unknown> }[] = [];
  private stream: AbortController | undefined;
  private pulling: Promise<void> | undefined;
  private pullAgain = false;
  private stopped = false;
  private readonly listeners: ((message: FetchedMessage) => void)[] = [];
  private readonly fetchListeners: ((messageId: string, requestedAt: number) => void)[] = [];
  private readonly sendListeners: ((messageId: string) => void)[] = [];
  private readonly ackListeners: ((messageId: string) => void)[] = [];
  private readonly acknowledged = new Set<string>();
  /** Reports not yet answered with a 2xx (sent again every `retryMs`). */
  unansweredCount = 0;
  /** Events streams the server answered (a reopened one adds one). */
  eventStreams = 0;
  private readonly baseUrls: string[];
  private current = 0;
  private poller: NodeJS.Timeout | undefined;

  constructor(
    /**
     * The app's "API URL": the server's address and `/api/mobile/v1`. Several: the addresses a load
     * balancer in front of several instances would lead to, tried in turn when one does not answer.
     */
    baseUrl: string | string[],
    /** The app's "Private token": a registration token. */
    private readonly privateToken: string,
    readonly behaviour: SmsGatePhoneBehaviour = defaultSmsGateBehaviour,
    private readonly name = "Google/sdk_gphone64",
  ) {
    this.baseUrls = Array.isArray(baseUrl) ? baseUrl : [baseUrl];
  }

  private get baseUrl(): string {
    return this.baseUrls[this.current % this.baseUrls.length] ?? "";
  }

  /** Hears of every message in every fetch, first or again, with when that fetch was asked for. */
  onFetch(listener: (messageId: string, requestedAt: number) => void): void {
    this.fetchListeners.push(listener);
  }

  /** Hears when the server first answers a report past `Pending` on a message (it holds it from then). */
  onAcknowledged(listener: (messageId: string) => void): void {
    this.ackListeners.push(listener);
  }

  /** Hears of every SMS the phone hands to its radio (at most once per message). */
  onSend(listener: (messageId: string) => void): void {
    this.sendListeners.push(listener);
  }

  /** Hears of every message the phone fetches for the first time. */
  onMessage(listener: (message: FetchedMessage) => void): void {
    this.listeners.push(listener);
  }

  private async call(method: string, path: string, body?: unknown, authorization?: string): Promise<Response> {
    const headers: Record<string, string> = { "user-agent": "me.capcom.smsgateway/1.68.0" };
    const auth = authorization ?? (this.token === undefined ? undefined : `Bearer ${this.token}`);
    if (auth !== undefined) headers.authorization = auth;
    if (body !== undefined) headers["content-type"] = "application/json";
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (error) {
      // No answer: the next address, next time.
      this.current += 1;
      throw error;
    }
    // The app's HTTP client throws on any status that is not 2xx (`expectSuccess = true`).
    if (!response.ok) throw new HttpError(response.status, await response.text());
    return response;
  }

  private simCards() {
    return [{ slotIndex: 0, simNumber: 1, phoneNumber: "*******1234", carrierName: "Test", iccid: "8901" }];
  }

  /** `POST /device`: signs up with the private token, or with `credentials` into an existing account. */
  async register(credentials?: { login: string; password: string } | { code: string }): Promise<void> {
    const authorization =
      credentials === undefined
        ? `Bearer ${this.privateToken}`
        : "code" in credentials
          ? `Code ${credentials.code}`
          : `Basic ${Buffer.from(`${credentials.login}:${credentials.password}`).toString("base64")}`;
    const response = await this.call("POST", "/device", { name: this.name, simCards: this.simCards() }, authorization);
    const body = (await response.json()) as { id: string; token: string; login: string; password?: string };
    this.deviceId = body.id;
    this.token = body.token;
    this.login = body.login;
    if (body.password !== undefined) this.password = body.password;
    this.registrations += 1;
  }

  /**
   * What the app does at start: `PATCH /device` (registering first when it has no token, or when the
   * PATCH answers 401), pulls its messages, syncs webhooks and settings, and opens its events stream.
   */
  async start(): Promise<void> {
    this.stopped = false;
    if (this.token === undefined) await this.register();
    try {
      await this.call("PATCH", "/device", { id: this.deviceId, simCards: this.simCards() });
    } catch (error) {
      if (!(error instanceof HttpError) || error.status !== 401) throw error;
      this.token = undefined;
      await this.register();
    }
    await this.pull();
    await this.syncWebhooks();
    await this.syncSettings();
    if (this.behaviour.events) await this.openEvents();
    if (this.behaviour.pollMs > 0 && this.poller === undefined) {
      this.poller = setInterval(() => void this.pull().catch(() => undefined), this.behaviour.pollMs);
      this.poller.unref();
    }
  }

  /** `GET /webhooks`: what the server wants the phone to post (the app's `WebhooksUpdateWorker`). */
  async syncWebhooks(): Promise<void> {
    this.webhooks = (await (await this.call("GET", "/webhooks")).json()) as typeof this.webhooks;
  }

  /** `GET /settings`: what the server wants the phone to do (the app imports it). */
  async syncSettings(): Promise<void> {
    this.settings = (await (await this.call("GET", "/settings")).json()) as typeof this.settings;
  }

  /** Closes the events stream and stops reporting (the app killed, or the phone gone). */
  stop(): void {
    this.stopped = true;
    clearInterval(this.poller);
    this.poller = undefined;
    this.stream?.abort();
    this.stream = undefined;
  }

  /** Whether the events stream is open. */
  get streaming(): boolean {
    return this.stream !== undefined && !this.stream.signal.aborted;
  }

  /** Opens `GET /events`; resolves once the server answered. It pulls on open, as the app does. */
  async openEvents(): Promise<void> {
    const controller = new AbortController();
    this.stream = controller;
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}/events`, {
        headers: { authorization: `Bearer ${this.token}`, accept: "text/event-stream" },
        signal: controller.signal,
      });
    } catch (error) {
      this.current += 1;
      this.reopenLater(controller);
      throw error;
    }
    if (!response.ok || response.body === null) {
      this.reopenLater(controller);
      controller.abort();
      throw new HttpError(response.status, await response.text());
    }
    this.eventStreams++;
    void this.pull().catch(() => undefined);
    void this.readEvents(response.body, controller);
  }

  private async readEvents(body: ReadableStream<Uint8Array>, controller: AbortController): Promise<void> {
    const decoder = new TextDecoder();
    let buffered = "";
    try {
      for await (const chunk of body) {
        buffered += decoder.decode(chunk, { stream: true });
        for (let end = buffered.indexOf("\n\n"); end >= 0; end = buffered.indexOf("\n\n")) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          this.onBlock(block);
        }
      }
    } catch {
      // Aborted, or the server closed it.
    } finally {
      this.reopenLater(controller);
      controller.abort();
    }
  }

  /** Opens the events stream again after `retryMs`, as the app does, unless stopped or replaced. */
  private reopenLater(controller: AbortController): void {
    if (this.behaviour.retryMs <= 0 || this.stopped || this.stream !== controller) return;
    const timer = setTimeout(() => {
      if (this.stopped || this.stream !== controller) return;
      this.openEvents().catch(() => undefined);
    }, this.behaviour.retryMs);
    timer.unref();
  }

  private onBlock(block: string): void {
    let name = "";
    let data = "";
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;
      if (line.startsWith("event:")) name = line.slice(6).trim();
      else if (line.startsWith("data:")) data += line.slice(5).trim();
    }
    if (name === "") return;
    this.events.push({ name, data });
    if (name === "MessageEnqueued") void this.pull().catch(() => undefined);
    if (name === "SettingsUpdated") void this.syncSettings().catch(() => undefined);
    if (name === "WebhooksUpdated") void this.syncWebhooks().catch(() => undefined);
    // The app posts the SMS of its inbox received in the window again (`MessagesExportRequested`).
    if (name === "MessagesExportRequested") {
      const { since, until, triggerWebhooks } = JSON.parse(data) as Record<string, string>;
      if (triggerWebhooks !== "false") void this.export(Date.parse(since ?? ""), Date.parse(until ?? ""));
    }
    // The app cancels a message it has not sent yet, and reports it Cancelled.
    if (name === "MessageCancelled") {
      const { messageId } = JSON.parse(data) as { messageId: string };
      const local = this.messages.get(messageId);
      if (local !== undefined && (local.state === "Pending" || local.state === "Processed")) {
        void this.move(messageId, "Cancelled").catch(() => undefined);
      }
    }
  }

  /** `GET /message`: takes what it has not seen and sends it (when `autoReport`). Calls at once share one pull. */
  async pull(): Promise<void> {
    if (this.pulling !== undefined) {
      this.pullAgain = true;
      return this.pulling;
    }
    this.pulling = (async () => {
      do {
        this.pullAgain = false;
        const requestedAt = Date.now();
        const response = await this.call("GET", `/message?order=${this.behaviour.order}`);
        const fetched = (await response.json()) as FetchedMessage[];
        for (const message of fetched) {
          for (const listener of this.fetchListeners) listener(message.id, requestedAt);
          this.take(message);
        }
      } while (this.pullAgain && !this.stopped);
    })().finally(() => {
      this.pulling = undefined;
    });
    return this.pulling;
  }

  private take(message: FetchedMessage): void {
    const known = this.messages.get(message.id);
    // Cancelled by its sender after the phone fetched it: cancelled if not sent yet, else its state again.
    if (message.state === "Cancelling") {
      if (known === undefined) {
        const local: Local = {
          message,
          state: "Cancelled",
          states: { Cancelled: new Date().toISOString() },
          error: null,
        };
        this.messages.set(message.id, local);
        void this.patch([local]).catch(() => undefined);
      } else if (known.state === "Pending") void this.move(message.id, "Cancelled").catch(() => undefined);
      else void this.patch([known]).catch(() => undefined);
      return;
    }
    if (known !== undefined) {
      // A message it already has: the app sends its state again.
      void this.patch([known]).catch(() => undefined);
      return;
    }
    const local: Local = { message, state: "Pending", states: { Pending: new Date().toISOString() }, error: null };
    this.messages.set(message.id, local);
    this.fetchedAt.set(message.id, Date.now());
    for (const listener of this.listeners) listener(message);
    if (this.behaviour.autoReport) void this.send(message.id).catch(() => undefined);
  }

  /** Hands the SMS to the radio and reports each state, as the app does. */
  async send(messageId: string): Promise<void> {
    // Handed to the radio: the app's state is Processed from then on, whatever the server heard.
    for (const listener of this.sendListeners) listener(messageId);
    await this.move(messageId, "Processed");
    await new Promise((resolve) => setTimeout(resolve, this.behaviour.sendLatencyMs));
    if (this.stopped) return;
    if (this.behaviour.fail) {
      await this.move(messageId, "Failed", "Send result: RESULT_ERROR_GENERIC_FAILURE");
      return;
    }
    await this.move(messageId, "Sent");
    if (this.stopped) return;
    await this.move(messageId, "Delivered");
  }

  /** Moves a message to `state` on the phone and reports the full snapshot (`PATCH /message`). */
  async move(messageId: string, state: State, error: string | null = null): Promise<void> {
    const local = this.messages.get(messageId);
    if (local === undefined) throw new Error(`the phone has no message ${messageId}`);
    local.state = state;
    local.states[state] = new Date().toISOString();
    local.error = error;
    await this.patch([local]);
  }

  /** Reports the snapshots; with `retryMs`, again and again until answered (a 4xx ends it). */
  private async patch(locals: Local[]): Promise<void> {
    if (this.behaviour.retryMs <= 0) return this.patchOnce(locals);
    this.unansweredCount += 1;
    try {
      for (;;) {
        try {
          return await this.patchOnce(locals);
        } catch (error) {
          if (error instanceof HttpError && error.status < 500) throw error;
          if (this.stopped) throw error;
          await new Promise((resolve) => setTimeout(resolve, this.behaviour.retryMs));
        }
      }
    } finally {
      this.unansweredCount -= 1;
    }
  }

  private async patchOnce(locals: Local[]): Promise<void> {
    await this.call(
      "PATCH",
      "/message",
      locals.map((local) => ({
        id: local.message.id,
        state: local.state,
        recipients: local.message.phoneNumbers.map((phoneNumber) => ({
          phoneNumber,
          state: local.state,
          ...(local.error === null ? {} : { error: local.error }),
        })),
        states: local.states,
      })),
    );
    for (const local of locals) {
      if (local.state === "Pending" || this.acknowledged.has(local.message.id)) continue;
      this.acknowledged.add(local.message.id);
      for (const listener of this.ackListeners) listener(local.message.id);
    }
  }

  /**
   * The phone receives an SMS: it posts `sms:received` to every webhook registered for it, signed
   * with its signing key (`X-Signature`: hex HMAC-SHA256 of the body and `X-Timestamp`). Returns the
   * answers' statuses; `replay` posts the same signed request twice.
   */
  async receive(sender: string, message: string, options: { messageId?: string; replay?: boolean } = {}) {
    return this.received("sms:received", sender, { message }, options);
  }

  /** The phone receives a data SMS (base64 `data`, to the app's port): it posts `sms:data-received`. */
  async receiveData(sender: string, data: string) {
    return this.received("sms:data-received", sender, { data });
  }

  /** Keeps a received SMS in the phone's inbox and posts it (the app's payload: `SmsEventPayload`). */
  private async received(
    event: "sms:received" | "sms:data-received",
    sender: string,
    content: { message: string } | { data: string },
    options: { messageId?: string; replay?: boolean } = {},
  ) {
    const payload = {
      messageId: options.messageId ?? randomUUID(),
      phoneNumber: sender,
      sender,
      recipient: "+14155550999",
      simNumber: 1,
      ...content,
      receivedAt: new Date().toISOString(),
    };
    this.inbox.push({ event, payload });
    return this.emit(event, payload, options.replay === true);
  }

  /** Posts another of the app's events (`mms:received`, `mms:downloaded`, `app:started`) with its payload. */
  async post(event: "mms:received" | "mms:downloaded" | "app:started", payload: Record<string, unknown>) {
    return this.emit(event, payload, false);
  }

  /** Posts the SMS of its inbox received from `sinceMs` to `untilMs` again (an export). */
  private async export(sinceMs: number, untilMs: number): Promise<void> {
    for (const { event, payload } of this.inbox) {
      const at = Date.parse(String(payload.receivedAt));
      if (at >= sinceMs && at <= untilMs) await this.emit(event, payload, false).catch(() => undefined);
    }
  }

  /**
   * The phone pings (the app's `PingForegroundService`, every `ping.interval_seconds`): it posts
   * `system:ping` with its health report to every webhook registered for it, signed like `receive`.
   */
  async ping(health: Record<string, unknown> = { status: "pass", checks: {} }) {
    return this.emit("system:ping", { health }, false);
  }

  /** Posts one of the app's webhook events to every webhook registered for it, signed. */
  private async emit(event: string, payload: Record<string, unknown>, replay: boolean): Promise<number[]> {
    const statuses: number[] = [];
    const key = String(this.settings.webhooks?.signing_key ?? "");
    for (const webhook of this.webhooks.filter((hook) => hook.event === event)) {
      const body = JSON.stringify({ id: randomUUID(), webhookId: webhook.id, event, deviceId: this.deviceId, payload });
      const timestamp = String(Math.floor(Date.now() / 1000));
      const signature = createHmac("sha256", key)
        .update(body + timestamp)
        .digest("hex");
      for (let i = 0; i < (replay ? 2 : 1); i++) {
        const response = await fetch(webhook.url, {
          method: "POST",
          headers: { "content-type": "application/json", "x-timestamp": timestamp, "x-signature": signature },
          body,
        });
        statuses.push(response.status);
      }
    }
    return statuses;
  }

  /** `PATCH /user/password`: the account's new password (the app's Settings → Cloud Server). */
  async changePassword(newPassword: string): Promise<void> {
    await this.call("PATCH", "/user/password", { currentPassword: this.password, newPassword });
    this.password = newPassword;
  }

  /** `GET /user/code` with the account's credentials: a code another phone signs in with. */
  async userCode(): Promise<{ code: string; validUntil: string }> {
    const basic = Buffer.from(`${this.login}:${this.password}`).toString("base64");
    return (await (await this.call("GET", "/user/code", undefined, `Basic ${basic}`)).json()) as {
      code: string;
      validUntil: string;
    };
  }
}

/** A call the server answered with a status that is not 2xx. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`HTTP ${status}: ${body.slice(0, 200)}`);
  }
}
