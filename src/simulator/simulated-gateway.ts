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
  /** Chance that taking a command drops the connection before reporting (it then reconnects). */
  dropProbability: number;
  /** Reconnect when the stream ends, as a real gateway app does. */
  reconnect: boolean;
  /** Acknowledge each command (apps for the original server never do). */
  ack: boolean;
}

export const defaultBehaviour: SimulatorBehaviour = {
  autoReport: true,
  successRate: 1,
  sendLatencyMs: 50,
  dropProbability: 0,
  reconnect: true,
  ack: true,
};

/** What a simulated phone did. */
export interface SimulatorTally {
  commands: number;
  duplicates: number;
  delivered: number;
  failed: number;
  drops: number;
  connects: number;
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

/**
 * A simulated Android gateway on the real `GatewayService.Connect` stream: it acknowledges
 * commands, "sends" the SMS after a latency, reports the outcome, heartbeats, and reconnects.
 */
export class SimulatedGateway {
  readonly commands: SendSmsCommand[] = [];
  readonly tally: SimulatorTally = { commands: 0, duplicates: 0, delivered: 0, failed: 0, drops: 0, connects: 0 };
  private readonly client: Client<typeof GatewayService>;
  private outbox: Outbox | undefined;
  private abort: AbortController | undefined;
  private stopped = false;
  private readonly reported = new Map<string, "delivered" | "failed">();
  private readonly listeners: ((command: SendSmsCommand) => void)[] = [];
  private connected: Promise<void> | undefined;
  private running: Promise<void> | undefined;

  constructor(
    transport: Transport,
    readonly apiKey: string,
    readonly deviceId: string,
    readonly behaviour: SimulatorBehaviour = defaultBehaviour,
    private readonly log: (line: string) => void = () => undefined,
  ) {
    this.client = createClient(GatewayService, transport);
  }

  /** Calls `listener` for every `send_sms` command, repeats included. */
  onCommand(listener: (command: SendSmsCommand) => void): void {
    this.listeners.push(listener);
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
    while (!this.stopped) {
      let ready: () => void = () => undefined;
      this.connected = new Promise((resolve) => {
        ready = resolve;
      });
      try {
        await this.session(() => {
          delayMs = 100;
          ready();
        });
      } catch (error) {
        if (!this.stopped) this.log(`${this.deviceId} stream ended: ${String(error)}`);
      }
      if (!this.behaviour.reconnect || this.stopped) {
        ready();
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      delayMs = Math.min(2000, delayMs * 2);
    }
  }

  private async session(onHello: () => void): Promise<void> {
    const outbox = new Outbox();
    const abort = new AbortController();
    this.outbox = outbox;
    this.abort = abort;
    const responses = this.client.connect(outbox, {
      headers: { authorization: `Bearer ${this.apiKey}` },
      signal: abort.signal,
    });
    let heartbeat: NodeJS.Timeout | undefined;
    try {
      for await (const response of responses) {
        const { frame } = response;
        if (frame.case === "hello") {
          this.tally.connects++;
          this.log(`${this.deviceId} connected`);
          heartbeat = setInterval(() => this.heartbeat(), frame.value.heartbeatIntervalSeconds * 1000);
          heartbeat.unref();
          this.heartbeat();
          onHello();
        } else if (frame.case === "sendSms") {
          this.take(frame.value);
        }
      }
    } finally {
      clearInterval(heartbeat);
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

  private take(command: SendSmsCommand): void {
    this.commands.push(command);
    for (const listener of this.listeners) listener(command);
    if (this.behaviour.ack) this.send({ frame: { case: "ack", value: { messageId: command.messageId } } });
    if (this.reported.get(command.messageId) === "delivered") {
      // A repeated command for a message already delivered: the phone does not send it twice.
      this.tally.duplicates++;
      this.report(command.messageId, "delivered");
      return;
    }
    this.tally.commands++;
    if (!this.behaviour.autoReport) return;
    if (Math.random() < this.behaviour.dropProbability) {
      this.tally.drops++;
      this.log(`${this.deviceId} drops its connection holding ${command.messageId}`);
      this.drop();
      return;
    }
    setTimeout(() => {
      const ok = Math.random() < this.behaviour.successRate;
      this.report(command.messageId, ok ? "sent" : "failed", ok ? null : "simulated failure");
      if (ok) this.report(command.messageId, "delivered");
      this.log(`${this.deviceId} ${command.messageId} to ${command.recipient}: ${ok ? "delivered" : "failed"}`);
    }, this.behaviour.sendLatencyMs);
  }

  /** Reports on a message, as the phone app does after sending. */
  report(messageId: string, status: "sent" | "delivered" | "failed", errorMessage: string | null = null): void {
    if (status === "delivered" || status === "failed") {
      this.reported.set(messageId, status);
      this.tally[status]++;
    }
    this.send({
      frame: {
        case: "deliveryReport",
        value: { messageId, status, ...(errorMessage === null ? {} : { errorMessage }) },
      },
    });
  }

  /** Reports an SMS the phone received. */
  received(sender: string, message: string): void {
    this.send({ frame: { case: "messageReceived", value: { sender, message } } });
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
