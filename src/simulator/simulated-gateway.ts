import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { type Client, createClient, type Transport } from "@connectrpc/connect";
import {
  type ConnectRequestSchema,
  GatewayService,
  ConnectRequestSchema as RequestSchema,
  type SendSmsCommand,
} from "../../gen/smsgw/v1/gateway_pb.js";

type Frame = MessageInitShape<typeof ConnectRequestSchema>;

/** How a simulated phone behaves. */
export interface SimulatorBehaviour {
  /** Reports on commands by itself; when false, the caller reports with `report`. */
  autoReport: boolean;
  /** Share of messages reported `sent` then `delivered`; the rest are reported `failed`. */
  successRate: number;
  /** Delay between taking a command and reporting it sent. */
  sendLatencyMs: number;
  /** When set, the delay to `sent` is drawn evenly from `sendLatencyMs` to this (a real phone's 1–3 s). */
  sendLatencyMaxMs?: number;
  /**
   * When set, `delivered` comes this long after `sent`, drawn evenly from the range (a network's
   * delivery report, 2–10 s later); otherwise with it.
   */
  deliveredAfterMs?: readonly [number, number];
  /** Chance that taking a command drops the connection before reporting (it then reconnects). */
  dropProbability: number;
  /** Reconnect when the stream ends, as a real gateway app does. */
  reconnect: boolean;
  /**
   * Acknowledge each command, and send the SMS only once the server's receipt says it is this
   * phone's to send (apps for the original server never acknowledge: they send at once).
   */
  ack: boolean;
  /**
   * With `ack`: send the SMS only on the receipt of the acknowledgement (true), or at once, as apps
   * written before receipts do (false).
   */
  awaitReceipt: boolean;
  /** How often frames the server has not given a receipt for are sent again while the stream is up. */
  resendMs: number;
}

export const defaultBehaviour: SimulatorBehaviour = {
  autoReport: true,
  successRate: 1,
  sendLatencyMs: 50,
  dropProbability: 0,
  reconnect: true,
  ack: true,
  awaitReceipt: true,
  resendMs: 2000,
};

/** What a simulated phone did. */
export interface SimulatorTally {
  /** Distinct messages it was told to send. */
  commands: number;
  /** Commands for messages it already knew (sent again by the server). */
  duplicates: number;
  /** SMS it handed to the radio (at most once per message). */
  sent: number;
  delivered: number;
  failed: number;
  /** Commands the server withdrew when the phone acknowledged them (given to another phone). */
  withdrawn: number;
  drops: number;
  connects: number;
  /** Frames sent again because no receipt came for them. */
  resent: number;
}

/** A frame queue the stream reads from; closing it half-closes the stream. */
class Outbox implements AsyncIterable<Frame> {
  private readonly items: Frame[] = [];
  private wake: (() => void) | undefined;
  private closed = false;

  push(frame: Frame): void {
    if (this.closed) return;
    this.items.push(frame);
    this.wake?.();
  }

  close(): void {
    this.closed = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Frame> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.closed) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
  }
}

/** Where a message stands on the phone. */
type Held = "acking" | "sending" | "done" | "withdrawn";

/**
 * A simulated Android gateway on the real `GatewayService.Connect` stream. Like a well-behaved app,
 * it acknowledges each command and sends the SMS only when the server's receipt says the message is
 * its to send; it keeps every acknowledgement and report until the server's receipt for it comes,
 * and sends those again after a reconnect and every `resendMs`; it sends each SMS at most once
 * however often the command comes; it heartbeats, and reconnects with backoff, trying its servers in
 * turn when it was given several.
 */
export class SimulatedGateway {
  readonly commands: SendSmsCommand[] = [];
  readonly tally: SimulatorTally = {
    commands: 0,
    duplicates: 0,
    sent: 0,
    delivered: 0,
    failed: 0,
    withdrawn: 0,
    drops: 0,
    connects: 0,
    resent: 0,
  };
  private readonly clients: Client<typeof GatewayService>[];
  private server = 0;
  private outbox: Outbox | undefined;
  private abort: AbortController | undefined;
  private stopped = false;
  private readonly held = new Map<string, Held>();
  private readonly reported = new Map<string, "delivered" | "failed">();
  private readonly recipients = new Map<string, string>();
  /** Frames sent and not yet answered by a receipt, by report id, oldest first, with when last sent. */
  private readonly unanswered = new Map<string, { frame: Frame; sentAt: number }>();
  /** When each acknowledgement was first sent. */
  private readonly ackSentAt = new Map<string, number>();
  /**
   * For each acknowledgement the server took, the milliseconds from sending it to its receipt: the
   * server answers once the acknowledgement is durable, so this bounds how long it was not.
   */
  readonly ackReceiptMs: number[] = [];
  private readonly listeners: ((command: SendSmsCommand) => void)[] = [];
  private readonly sendListeners: ((messageId: string) => void)[] = [];
  private connected: Promise<void> | undefined;
  private running: Promise<void> | undefined;
  private reportSequence = 0;

  constructor(
    transport: Transport | Transport[],
    readonly apiKey: string,
    readonly deviceId: string,
    readonly behaviour: SimulatorBehaviour = { ...defaultBehaviour },
    private readonly log: (line: string) => void = () => undefined,
  ) {
    this.clients = (Array.isArray(transport) ? transport : [transport]).map((t) => createClient(GatewayService, t));
  }

  /** Calls `listener` for every `send_sms` command, repeats included. */
  onCommand(listener: (command: SendSmsCommand) => void): void {
    this.listeners.push(listener);
  }

  /** Calls `listener` each time the phone hands an SMS to its radio (once per message). */
  onSend(listener: (messageId: string) => void): void {
    this.sendListeners.push(listener);
  }

  /** How many frames await the server's receipt. */
  get unansweredCount(): number {
    return this.unanswered.size;
  }

  /** Opens the stream; resolves once the server said hello. */
  async connect(): Promise<void> {
    this.stopped = false;
    this.running = this.loop();
    await this.waitConnected();
  }

  /** Resolves when the current (or next) stream is open. */
  waitConnected(): Promise<void> {
    return this.connected ?? Promise.resolve();
  }

  private async loop(): Promise<void> {
    let delayMs = 100;
    // Who waits for the phone to be connected waits through attempts that fail before hello.
    let ready: (() => void) | undefined;
    while (!this.stopped) {
      if (ready === undefined) {
        this.connected = new Promise((resolve) => {
          ready = resolve;
        });
      }
      let helloed = false;
      try {
        await this.session(() => {
          helloed = true;
          delayMs = 100;
          ready?.();
          ready = undefined;
        });
      } catch (error) {
        if (!this.stopped) this.log(`${this.deviceId} stream ended: ${String(error)}`);
      }
      if (!this.behaviour.reconnect || this.stopped) {
        ready?.();
        return;
      }
      // A server that would not even say hello: try the next one, if there is another.
      if (!helloed) this.server = (this.server + 1) % this.clients.length;
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      delayMs = Math.min(2000, delayMs * 2);
    }
  }

  private async session(onHello: () => void): Promise<void> {
    const outbox = new Outbox();
    const abort = new AbortController();
    this.outbox = outbox;
    this.abort = abort;
    const client = this.clients[this.server] ?? this.clients[0];
    if (client === undefined) throw new Error("no server to connect to");
    const responses = client.connect(outbox, {
      headers: { authorization: `Bearer ${this.apiKey}` },
      signal: abort.signal,
    });
    let heartbeat: NodeJS.Timeout | undefined;
    const resend = setInterval(() => this.resendUnanswered(this.behaviour.resendMs), this.behaviour.resendMs);
    resend.unref();
    try {
      for await (const response of responses) {
        const { frame } = response;
        if (frame.case === "hello") {
          this.tally.connects++;
          this.log(`${this.deviceId} connected`);
          heartbeat = setInterval(() => this.heartbeat(), frame.value.heartbeatIntervalSeconds * 1000);
          heartbeat.unref();
          this.heartbeat();
          // What the last connection left without a receipt goes first.
          this.resendUnanswered(0);
          onHello();
        } else if (frame.case === "sendSms") {
          this.take(frame.value);
        } else if (frame.case === "receipt") {
          this.answered(frame.value.reportId, frame.value.error);
        }
      }
    } finally {
      clearInterval(heartbeat);
      clearInterval(resend);
      outbox.close();
    }
  }

  private heartbeat(): void {
    this.send({
      frame: {
        case: "heartbeat",
        value: { status: "online", batteryLevel: 80, signalStrength: 4, messagesInQueue: 0 },
      },
    });
  }

  private send(frame: Frame): void {
    this.outbox?.push(create(RequestSchema, frame));
  }

  /** Sends a frame that the server answers with a receipt, and keeps it until that receipt comes. */
  private sendReliably(reportId: string, frame: Frame): void {
    this.unanswered.set(reportId, { frame, sentAt: Date.now() });
    this.send(frame);
  }

  /** Sends again the frames with no receipt that were last sent at least `olderThanMs` ago. */
  private resendUnanswered(olderThanMs: number): void {
    const now = Date.now();
    for (const entry of this.unanswered.values()) {
      if (now - entry.sentAt < olderThanMs) continue;
      entry.sentAt = now;
      this.tally.resent++;
      this.send(entry.frame);
    }
  }

  private answered(reportId: string, error: string | undefined): void {
    if (!this.unanswered.delete(reportId)) return;
    const messageId = reportId.startsWith("ack:") ? reportId.slice(4) : undefined;
    if (messageId === undefined || this.held.get(messageId) !== "acking") return;
    if (error === undefined) {
      const sentAt = this.ackSentAt.get(messageId);
      if (sentAt !== undefined) this.ackReceiptMs.push(Date.now() - sentAt);
      this.held.set(messageId, "sending");
      this.deliver(messageId);
    } else {
      // Given to another phone meanwhile (or cancelled): this phone must not send it.
      this.held.set(messageId, "withdrawn");
      this.tally.withdrawn++;
      this.log(`${this.deviceId} ${messageId} withdrawn: ${error}`);
    }
  }

  private take(command: SendSmsCommand): void {
    this.commands.push(command);
    for (const listener of this.listeners) listener(command);
    // A message it failed to send (or was withdrawn from it) may come back as a new attempt.
    const known = this.held.get(command.messageId);
    const again = known === "withdrawn" || (known === "done" && this.reported.get(command.messageId) === "failed");
    if (known !== undefined && !again) {
      // The same command again: the phone does not send it twice. An acknowledgement without a
      // receipt goes again; reports go again until their receipts come.
      this.tally.duplicates++;
      if (known === "acking") this.acknowledge(command.messageId);
      return;
    }
    this.tally.commands++;
    this.recipients.set(command.messageId, command.recipient);
    const waits = this.behaviour.ack && this.behaviour.awaitReceipt;
    this.held.set(command.messageId, waits ? "acking" : "sending");
    if (this.behaviour.ack) this.acknowledge(command.messageId);
    if (this.behaviour.autoReport && Math.random() < this.behaviour.dropProbability) {
      this.tally.drops++;
      this.log(`${this.deviceId} drops its connection holding ${command.messageId}`);
      this.drop();
      return;
    }
    if (!waits) this.deliver(command.messageId);
  }

  private acknowledge(messageId: string): void {
    if (!this.ackSentAt.has(messageId)) this.ackSentAt.set(messageId, Date.now());
    this.sendReliably(`ack:${messageId}`, {
      frame: { case: "ack", value: { messageId, reportId: `ack:${messageId}` } },
    });
  }

  /** Hands the SMS to the radio (once), then reports on it after the latency, when it reports by itself. */
  private deliver(messageId: string): void {
    this.tally.sent++;
    for (const listener of this.sendListeners) listener(messageId);
    if (!this.behaviour.autoReport) return;
    const { sendLatencyMs, sendLatencyMaxMs, deliveredAfterMs } = this.behaviour;
    const between = (min: number, max: number) => min + Math.random() * Math.max(0, max - min);
    setTimeout(
      () => {
        const ok = Math.random() < this.behaviour.successRate;
        this.report(messageId, ok ? "sent" : "failed", ok ? null : "simulated failure");
        if (ok && deliveredAfterMs === undefined) this.report(messageId, "delivered");
        else if (ok && deliveredAfterMs !== undefined)
          setTimeout(() => this.report(messageId, "delivered"), between(...deliveredAfterMs));
        this.log(`${this.deviceId} ${messageId} to ${this.recipients.get(messageId)}: ${ok ? "delivered" : "failed"}`);
      },
      between(sendLatencyMs, sendLatencyMaxMs ?? sendLatencyMs),
    );
  }

  /** Changes how the phone behaves from now on (commands it already took keep their timing). */
  behave(patch: Partial<SimulatorBehaviour>): void {
    Object.assign(this.behaviour, patch);
  }

  /** Reports on a message, as the phone app does after sending; kept until the server's receipt. */
  report(messageId: string, status: "sent" | "delivered" | "failed", errorMessage: string | null = null): void {
    if (status === "delivered" || status === "failed") {
      this.reported.set(messageId, status);
      this.tally[status]++;
      this.held.set(messageId, "done");
    }
    // A failed attempt may come again later (another attempt on this phone): each report has its own id.
    const reportId = `${status}:${messageId}:${++this.reportSequence}`;
    this.sendReliably(reportId, {
      frame: {
        case: "deliveryReport",
        value: { messageId, status, reportId, ...(errorMessage === null ? {} : { errorMessage }) },
      },
    });
  }

  /** Reports an SMS the phone received; kept until the server's receipt. */
  received(sender: string, message: string): void {
    const reportId = `received:${this.deviceId}:${++this.reportSequence}:${Date.now()}`;
    this.sendReliably(reportId, { frame: { case: "messageReceived", value: { sender, message, reportId } } });
  }

  /** Drops the connection abruptly (as a phone losing signal does); it reconnects if told to. */
  drop(): void {
    this.abort?.abort();
  }

  /** Closes the stream for good. */
  async disconnect(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    await this.running?.catch(() => undefined);
  }
}
