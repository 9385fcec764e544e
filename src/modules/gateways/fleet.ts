import type { Logger } from "pino";
import type { GatewayRecord } from "./gateway.entity.js";

/** A gateway's live state, as the console's fleet view shows it. */
export interface FleetGatewayView {
  id: number;
  deviceId: string;
  name: string;
  status: "online" | "offline";
  /** `stream`, `cable` or `polling` (heartbeats over REST only); empty when offline. */
  channel: string;
  batteryLevel: number | undefined;
  signalStrength: number | undefined;
  lastHeartbeatAt: Date | null;
  inFlight: number;
  sentToday: number;
  sendsPerMinute: number;
  priority: number;
  active: boolean;
}

/** Where the fleet's live state comes from. */
export interface FleetSources {
  gateways: () => Promise<GatewayRecord[]>;
  /** The channel of each connected gateway, on whichever instance holds it. */
  channels: (gatewayIds: number[]) => Promise<Map<number, string>>;
  /** Messages given to each gateway and not yet reported sent. */
  inFlight: () => Promise<Map<number, number>>;
  sendsPerMinute: number;
}

const finite = (value: unknown) =>
  typeof value === "number" && Number.isFinite(value) ? Math.round(value) : undefined;

/** The live state of `gateways` (every gateway when unset) as it stands now. */
export async function readFleet(sources: FleetSources, only?: GatewayRecord[]): Promise<FleetGatewayView[]> {
  const [gateways, inFlight] = await Promise.all([only ?? sources.gateways(), sources.inFlight()]);
  const channels = await sources.channels(gateways.map((gateway) => gateway.id));
  return gateways.map((gateway) => {
    const online = gateway.status === "online";
    return {
      id: gateway.id,
      deviceId: gateway.deviceId,
      name: gateway.name,
      status: online ? "online" : "offline",
      channel: online ? (channels.get(gateway.id) ?? "polling") : "",
      batteryLevel: finite(gateway.metadata.battery_level),
      signalStrength: finite(gateway.metadata.signal_strength),
      lastHeartbeatAt: gateway.lastHeartbeatAt ?? null,
      inFlight: inFlight.get(gateway.id) ?? 0,
      sentToday: gateway.messagesSentToday,
      sendsPerMinute: sources.sendsPerMinute,
      priority: gateway.priority,
      active: gateway.active,
    };
  });
}

type Listener = (fleet: FleetGatewayView[]) => void;

/**
 * The fleet for watchers: while anyone watches, it is read once every `intervalMs` (one read per
 * instance, however many watch), and each watcher is given it whenever it changed.
 */
export class FleetWatch {
  private readonly listeners = new Set<Listener>();
  /** Ends every watch (the server is stopping): each watcher's stream ends, and its client reconnects. */
  private readonly closing = new AbortController();
  private latest: { fleet: FleetGatewayView[]; json: string } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private reading = false;

  constructor(
    private readonly sources: FleetSources,
    private readonly logger: Logger,
    private readonly intervalMs = 1000,
  ) {}

  /** The live state of these gateways now. */
  describe(gateways: GatewayRecord[]): Promise<FleetGatewayView[]> {
    return readFleet(this.sources, gateways);
  }

  /** The fleet now, then each time it changes, until `signal` aborts. */
  async *watch(signal: AbortSignal): AsyncGenerator<FleetGatewayView[]> {
    const waiting: FleetGatewayView[][] = [];
    let wake: (() => void) | undefined;
    const listener: Listener = (fleet) => {
      // Only the newest state matters to a watcher that fell behind.
      waiting.length = 0;
      waiting.push(fleet);
      wake?.();
    };
    const aborted = () => wake?.();
    signal.addEventListener("abort", aborted);
    this.closing.signal.addEventListener("abort", aborted);
    this.listeners.add(listener);
    try {
      // The first answer is read now: a new watcher does not wait for the next tick, and the first
      // tick does not send it the same fleet again.
      const first = await readFleet(this.sources);
      if (this.timer === undefined) this.latest = { fleet: first, json: JSON.stringify(first) };
      yield first;
      this.start();
      while (!signal.aborted && !this.closing.signal.aborted) {
        const next = waiting.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      signal.removeEventListener("abort", aborted);
      this.closing.signal.removeEventListener("abort", aborted);
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    }
  }

  /** Ends every watch now and for good. */
  close(): void {
    this.closing.abort();
  }

  private start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.latest = undefined;
  }

  private async tick(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      const fleet = await readFleet(this.sources);
      const json = JSON.stringify(fleet);
      if (json === this.latest?.json) return;
      this.latest = { fleet, json };
      for (const listener of this.listeners) listener(fleet);
    } catch (error) {
      this.logger.warn({ err: error }, "reading the fleet failed");
    } finally {
      this.reading = false;
    }
  }
}
