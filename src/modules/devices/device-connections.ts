import { randomUUID } from "node:crypto";
import { CommandQueue } from "./command-queue.js";
import type { ConnectedGateway, DeviceChannel, DeviceCommand } from "./device.types.js";

/** Why a connection ended. `shutdown` asks the device to reconnect elsewhere. */
export type CloseReason = "device_closed" | "replaced" | "idle" | "shutdown" | "revoked";

/** One live device connection: its commands and its liveness. */
export class DeviceConnection {
  readonly id = randomUUID();
  readonly commands: CommandQueue;
  lastSeenMs = Date.now();
  lastTouchMs = 0;
  /** The gateway is inactive: it keeps its connection but is given no new command. */
  paused = false;
  closeReason: CloseReason | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  /** Frames being recorded while the connection reads on (acknowledgements). */
  private readonly recording = new Set<Promise<void>>();

  constructor(
    readonly gateway: ConnectedGateway,
    capacity: number,
    readonly channel: DeviceChannel,
  ) {
    this.commands = new CommandQueue(capacity);
  }

  /** Records `work` while the connection reads on; resolves when at most `limit` are still being recorded. */
  async alongside(work: Promise<void>, limit: number): Promise<void> {
    this.recording.add(work);
    void work.finally(() => this.recording.delete(work));
    while (this.recording.size >= limit) await Promise.race(this.recording);
  }

  /** Resolves once every frame read so far is recorded. */
  async recorded(): Promise<void> {
    while (this.recording.size > 0) await Promise.all(this.recording);
  }

  every(ms: number, tick: () => void): void {
    const timer = setInterval(tick, ms);
    timer.unref();
    this.timers.push(timer);
  }

  /** Ends the connection's command stream; the channel then closes. */
  close(reason: CloseReason): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    for (const timer of this.timers) clearInterval(timer);
    this.commands.close();
  }
}

/**
 * The live connections of this instance, one per gateway: where commands are pushed. It depends on
 * nothing, so that whatever pushes commands (the first dispatch, the device activity) is built before
 * the hub that takes the devices' frames to the domain.
 */
export class LiveDevices {
  private readonly byGateway = new Map<number, DeviceConnection>();

  /** Makes `connection` the gateway's, closing an older one. */
  add(connection: DeviceConnection): void {
    this.byGateway.get(connection.gateway.gatewayId)?.close("replaced");
    this.byGateway.set(connection.gateway.gatewayId, connection);
  }

  /** Forgets `connection` unless a newer one holds its gateway. */
  remove(connection: DeviceConnection): void {
    if (this.byGateway.get(connection.gateway.gatewayId) === connection)
      this.byGateway.delete(connection.gateway.gatewayId);
  }

  /** How many gateways hold a connection here. */
  get size(): number {
    return this.byGateway.size;
  }

  /** Whether the gateway holds a connection here (open or closing). */
  holds(gatewayId: number): boolean {
    return this.byGateway.has(gatewayId);
  }

  /** The gateway's open connection to this instance, if any. */
  openOf(gatewayId: number): DeviceConnection | undefined {
    const connection = this.byGateway.get(gatewayId);
    return connection?.closeReason === undefined ? connection : undefined;
  }

  /** Whether a command for the gateway would be taken here now: connected to this instance and active. */
  accepts(gatewayId: number): boolean {
    const connection = this.byGateway.get(gatewayId);
    return connection !== undefined && connection.closeReason === undefined && !connection.paused;
  }

  /** Queues a command for a gateway connected here: false when it is not, is inactive, or its queue is full. */
  push(gatewayId: number, command: DeviceCommand): boolean {
    const connection = this.byGateway.get(gatewayId);
    return (
      connection !== undefined &&
      connection.closeReason === undefined &&
      !connection.paused &&
      connection.commands.push(command)
    );
  }

  /** Ends at once every connection that authenticated with a key that was just revoked. */
  revokeKey(keyId: number): void {
    for (const connection of this.byGateway.values()) {
      if (connection.gateway.keyId === keyId) connection.close("revoked");
    }
  }

  /** Stops (or resumes) new commands to a gateway connected here, as its active flag says. */
  setActive(gatewayId: number, active: boolean): void {
    const connection = this.byGateway.get(gatewayId);
    if (connection !== undefined) connection.paused = !active;
  }

  /** How many devices are connected here, by channel. */
  connectedByChannel(): Record<DeviceChannel, number> {
    const counts = { stream: 0, cable: 0, sse: 0, poll: 0 };
    for (const connection of this.byGateway.values())
      if (connection.closeReason === undefined) counts[connection.channel]++;
    return counts;
  }

  /** The keys the devices connected here authenticated with. */
  connectedKeyIds(): number[] {
    return [...new Set([...this.byGateway.values()].map((connection) => connection.gateway.keyId))];
  }

  /** The connections still open. */
  open(): DeviceConnection[] {
    return [...this.byGateway.values()].filter((connection) => connection.closeReason === undefined);
  }

  /** Ends every connection (server shutdown): devices reconnect to another instance. */
  closeAll(reason: CloseReason): void {
    for (const connection of this.byGateway.values()) connection.close(reason);
  }
}
