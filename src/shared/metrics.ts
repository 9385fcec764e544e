import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { DeviceChannel } from "../modules/devices/index.js";

/** Where the messages waiting or in flight stand, read when Prometheus scrapes. */
export interface PipelineFigures {
  queued: number;
  dispatched: number;
  /** Dispatched and not acknowledged by their gateway. */
  unacknowledged: number;
}

/** A gateway as the scrape reads it. */
export interface GatewayFigure {
  deviceId: string;
  online: boolean;
  active: boolean;
  /** Seconds since the epoch of its last heartbeat; null when it never sent one. */
  lastHeartbeatSeconds: number | null;
}

/** What a scrape asks of the rest of the process: the database's figures and the devices held here. */
export interface MetricSources {
  pipeline(): Promise<PipelineFigures>;
  gateways(): Promise<GatewayFigure[]>;
  connectedDevices(): Record<DeviceChannel, number>;
}

/** `read`, shared by the calls made within half a second (the gauges of one scrape). */
function perScrape<T>(read: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= read().finally(() => {
      setTimeout(() => {
        pending = undefined;
      }, 500).unref();
    });
    return pending;
  };
}

const latencyBuckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/**
 * The process's Prometheus metrics: the domain's (messages, devices, webhooks, OTP, rate limits,
 * workflow starts) and the process's own. Counters and histograms count what this process did
 * (sum them over instances); gauges read from the database are the same on every instance.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly accepted = this.counter("smsgw_messages_accepted_total", "Messages accepted (sends answered 202).");
  private readonly ended = new Counter({
    name: "smsgw_messages_total",
    help: "Messages that reached an outcome: sent (by a gateway), delivered, failed, expired, cancelled; by gateway device id ('' for none).",
    labelNames: ["outcome", "gateway"] as const,
    registers: [this.registry],
  });
  private readonly toDispatch = this.histogram(
    "smsgw_message_accept_to_dispatch_seconds",
    "From acceptance to the first dispatch to a gateway.",
  );
  private readonly toDelivered = this.histogram(
    "smsgw_message_accept_to_delivered_seconds",
    "From acceptance to the delivery report.",
  );
  private readonly ackRecording = new Histogram({
    name: "smsgw_device_ack_record_seconds",
    help: "From a device's acknowledgement frame read off its connection to its being durable in PostgreSQL.",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [this.registry],
  });
  private readonly webhookDeliveries = new Counter({
    name: "smsgw_webhook_deliveries_total",
    help: "Webhook deliveries ended: succeeded, or failed for good.",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });
  private readonly webhookAttempts = new Histogram({
    name: "smsgw_webhook_attempt_seconds",
    help: "One HTTP attempt of a webhook delivery, by outcome (succeeded, retry, give_up).",
    labelNames: ["outcome"] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  private readonly otp = new Counter({
    name: "smsgw_otp_total",
    help: "One-time passwords: sent, verified, failed (a verification with a wrong, used or expired code).",
    labelNames: ["event"] as const,
    registers: [this.registry],
  });
  private readonly limited = new Counter({
    name: "smsgw_rate_limited_total",
    help: "Requests refused with 429: over a key's or an address's rate limit, or after failed authentications.",
    labelNames: ["limit"] as const,
    registers: [this.registry],
  });
  private readonly startFailures = this.counter(
    "smsgw_workflow_start_failures_total",
    "Message workflows that could not be started (the sweeper starts them later).",
  );

  constructor(sources?: MetricSources) {
    collectDefaultMetrics({ register: this.registry });
    if (sources !== undefined) this.gauges(sources);
  }

  private counter(name: string, help: string): Counter {
    return new Counter({ name, help, registers: [this.registry] });
  }

  private histogram(name: string, help: string): Histogram {
    return new Histogram({ name, help, buckets: latencyBuckets, registers: [this.registry] });
  }

  /** Gauges read at scrape time; a source that fails leaves its gauges at their last values. */
  private gauges(sources: MetricSources): void {
    const registers = [this.registry];
    // One query per source per scrape, however many gauges read it.
    const figures = perScrape(() => sources.pipeline());
    const gateways = perScrape(() => sources.gateways());
    new Gauge({
      name: "smsgw_messages_backlog",
      help: "Messages waiting for a gateway (queued) or given to one and not yet reported sent (dispatched).",
      labelNames: ["status"] as const,
      registers,
      async collect() {
        const { queued, dispatched } = await figures();
        this.set({ status: "queued" }, queued);
        this.set({ status: "dispatched" }, dispatched);
      },
    });
    new Gauge({
      name: "smsgw_commands_unacknowledged",
      help: "Messages dispatched to a gateway that has not acknowledged the command.",
      registers,
      async collect() {
        this.set((await figures()).unacknowledged);
      },
    });
    new Gauge({
      name: "smsgw_devices_connected",
      help: "Devices connected to this instance, by channel (stream: gRPC/Connect; cable: Action Cable; sse: the SMSGate app's events stream; poll: the SMSGate app calling without one).",
      labelNames: ["channel"] as const,
      registers,
      collect() {
        for (const [channel, count] of Object.entries(sources.connectedDevices())) this.set({ channel }, count);
      },
    });
    new Gauge({
      name: "smsgw_gateways",
      help: "Registered gateways, by status (online, offline) and whether they are active.",
      labelNames: ["status", "active"] as const,
      registers,
      async collect() {
        const all = await gateways();
        this.reset();
        for (const status of ["online", "offline"]) {
          for (const active of [true, false]) {
            const count = all.filter((g) => g.online === (status === "online") && g.active === active).length;
            this.set({ status, active: String(active) }, count);
          }
        }
      },
    });
    new Gauge({
      name: "smsgw_gateway_last_heartbeat_timestamp_seconds",
      help: "When each active gateway last sent a heartbeat (seconds since the epoch).",
      labelNames: ["gateway"] as const,
      registers,
      async collect() {
        this.reset();
        for (const gateway of await gateways()) {
          if (gateway.active && gateway.lastHeartbeatSeconds !== null) {
            this.set({ gateway: gateway.deviceId }, gateway.lastHeartbeatSeconds);
          }
        }
      },
    });
  }

  messagesAccepted(count: number): void {
    if (count > 0) this.accepted.inc(count);
  }

  /** A message reached an outcome (once: callers count only transitions that happened). */
  messageOutcome(outcome: "sent" | "delivered" | "failed" | "expired" | "cancelled", gateway: string | null): void {
    this.ended.inc({ outcome, gateway: gateway ?? "" });
  }

  firstDispatched(ageSeconds: number): void {
    this.toDispatch.observe(ageSeconds);
  }

  delivered(ageSeconds: number): void {
    this.toDelivered.observe(ageSeconds);
  }

  /** A device's acknowledgement became durable `seconds` after its frame was read. */
  ackRecorded(seconds: number): void {
    this.ackRecording.observe(seconds);
  }

  webhookAttempt(outcome: string, durationMs: number): void {
    this.webhookAttempts.observe({ outcome }, durationMs / 1000);
  }

  webhookDelivery(outcome: "succeeded" | "failed"): void {
    this.webhookDeliveries.inc({ outcome });
  }

  otpEvent(event: "sent" | "verified" | "failed"): void {
    this.otp.inc({ event });
  }

  rateLimited(limit: "key" | "address" | "authentication"): void {
    this.limited.inc({ limit });
  }

  workflowStartFailed(): void {
    this.startFailures.inc();
  }
}
