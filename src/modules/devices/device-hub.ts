import type { Logger } from "pino";
import { DomainError } from "../../shared/errors.js";
import type { GatewayRegistry } from "../gateways/index.js";
import type { MessagesService } from "../messages/index.js";
import type { ConnectedGateway, DeviceChannel, DeviceFrame, InboundSink } from "./device.types.js";
import { DeviceConnection, type LiveDevices } from "./device-connections.js";
import type { Presence } from "./presence.js";

/** Acknowledgements one connection may have being recorded at once; its reading waits past that. */
const maxAcksRecording = 1000;

/**
 * The devices connected to this instance, whatever channel they use. It keeps their presence in
 * Redis, hands their frames to the domain, and pushes commands to them.
 */
export class DeviceHub {
  constructor(
    private readonly deps: {
      /** Where commands are pushed; the hub adds and removes the connections. */
      connections: LiveDevices;
      presence: Presence;
      gateways: Pick<GatewayRegistry, "touch" | "heartbeat" | "markDisconnected">;
      messages: Pick<
        MessagesService,
        "unacknowledged" | "wakeQueued" | "acknowledge" | "report" | "gatewayLost" | "cancelledOnGateway"
      >;
      /** Where received SMS go (the inbound module). */
      inbound: InboundSink;
      logger: Logger;
      /** This instance's Temporal task queue for pushes. */
      taskQueue: string;
      heartbeatIntervalSeconds: number;
      pingIntervalSeconds: number;
      idleTimeoutSeconds: number;
      maxQueuedCommands: number;
      /** Devices this instance holds at most (a reconnect of one it holds is always taken). */
      maxConnections: number;
      /** Told how long each acknowledgement took to become durable. */
      ackRecorded?: (seconds: number) => void;
    },
  ) {}

  get heartbeatIntervalSeconds(): number {
    return this.deps.heartbeatIntervalSeconds;
  }

  /** How often the server pings its devices (`DEVICE_PING_INTERVAL_SECONDS`). */
  get pingIntervalSeconds(): number {
    return this.deps.pingIntervalSeconds;
  }

  /**
   * Registers a new connection for a gateway (replacing an older one of the same gateway), marks it
   * present and online, queues again the commands it had not acknowledged, and wakes waiting messages.
   */
  async connect(gateway: ConnectedGateway, channel: DeviceChannel): Promise<DeviceConnection> {
    // Full: the device is told to try again (Unavailable, 503), and reaches another instance or this
    // one later, rather than growing this process past the memory it was given for its devices.
    const { connections, maxConnections } = this.deps;
    if (connections.size >= maxConnections && !connections.holds(gateway.gatewayId)) {
      throw new DomainError(
        "unavailable",
        `This server holds as many devices as it may (DEVICE_MAX_CONNECTIONS=${maxConnections}); connect to another, or try again later`,
      );
    }
    const connection = new DeviceConnection(gateway, this.deps.maxQueuedCommands, channel);
    this.deps.connections.add(connection);
    // Without Redis the device still connects; its presence is claimed as soon as Redis is back.
    await this.deps.presence
      .hold(gateway.gatewayId, this.deps.taskQueue, connection.id, connection.channel)
      .catch((error: unknown) =>
        this.deps.logger.warn({ err: error, deviceId: gateway.deviceId }, "claiming presence failed"),
      );
    let wasOffline: boolean;
    try {
      const touched = await this.deps.gateways.touch(gateway.gatewayId);
      wasOffline = touched.wasOffline;
      connection.paused = !touched.active;
      connection.lastTouchMs = Date.now();
      for (const command of await this.deps.messages.unacknowledged(gateway.gatewayId)) {
        connection.commands.push({
          type: "send_sms",
          messageId: command.messageId,
          recipient: command.recipient,
          message: command.body,
        });
      }
    } catch (error) {
      // The database did not answer: no half-open connection stays to be given commands; the device
      // is refused (503 or Unavailable) and connects again.
      connection.close("device_closed");
      this.deps.connections.remove(connection);
      await this.deps.presence.release(gateway.gatewayId, connection.id).catch(() => false);
      throw error;
    }
    connection.every(this.deps.pingIntervalSeconds * 1000, () => {
      if (Date.now() - connection.lastSeenMs > this.deps.idleTimeoutSeconds * 1000) connection.close("idle");
      else connection.commands.push({ type: "ping", sentAt: new Date() });
    });
    if (wasOffline) {
      this.deps.messages
        .wakeQueued()
        .catch((error: unknown) => this.deps.logger.warn({ err: error }, "waking queued messages failed"));
    }
    this.deps.logger.info({ deviceId: gateway.deviceId, connection: connection.id }, "device connected");
    return connection;
  }

  /** Records that the device answered at the transport level (a WebSocket pong): it is alive. */
  async alive(connection: DeviceConnection): Promise<void> {
    connection.lastSeenMs = Date.now();
    try {
      await this.refresh(connection);
    } catch (error) {
      this.deps.logger.warn({ err: error, deviceId: connection.gateway.deviceId }, "refreshing presence failed");
    }
  }

  /**
   * Handles one frame from a device. Its report is recorded before anything else is tried. A frame
   * that carries a `reportId` is answered with a receipt once it is recorded, or refused for good (a
   * domain refusal, with its reason); one that could not be recorded (the database did not answer)
   * gets no receipt, so the device sends it again. The connection stays either way.
   */
  async handle(connection: DeviceConnection, frame: DeviceFrame): Promise<void> {
    // An acknowledgement is recorded while the connection reads on: a phone taking a burst sends them
    // back to back, and they share statements (the repository batches them) instead of each waiting
    // for the one before. Any other frame waits until the acknowledgements before it are recorded, so
    // that what a device says is recorded in the order it said it.
    if (frame.type === "ack") {
      const readAt = performance.now();
      const durable = () => this.deps.ackRecorded?.((performance.now() - readAt) / 1000);
      return connection.alongside(this.record(connection, frame, durable), maxAcksRecording);
    }
    await connection.recorded();
    await this.record(connection, frame);
  }

  /** Records a frame and answers it; `recorded` is told the moment it is durable. */
  private async record(connection: DeviceConnection, frame: DeviceFrame, recorded?: () => void): Promise<void> {
    const { deviceId } = connection.gateway;
    connection.lastSeenMs = Date.now();
    const reportId = frame.type === "heartbeat" || frame.type === "cancelled" ? undefined : frame.reportId;
    const receipt = (error?: string) => {
      if (reportId !== undefined && reportId !== "") {
        connection.commands.push({ type: "receipt", reportId, ...(error === undefined ? {} : { error }) }, true);
      }
    };
    try {
      await this.recordFrame(connection.gateway.gatewayId, frame);
      recorded?.();
      receipt();
    } catch (error) {
      if (error instanceof DomainError) {
        receipt(error.message);
        this.deps.logger.info({ err: error.message, deviceId, frame: frame.type }, "device frame refused");
      } else {
        this.deps.logger.warn({ err: error, deviceId, frame: frame.type }, "device frame not recorded");
      }
    }
    await this.alive(connection);
  }

  /**
   * Records a frame of a phone that reports by calls rather than on a stream (the SMSGate app's
   * snapshots and posted webhooks), as `handle` records a streamed one: throws when it is refused (a
   * `DomainError`) or cannot be recorded, so that the call answers it. `connection`: the phone's
   * connection here, when it has one (what it said before on it is recorded first).
   */
  async report(gatewayId: number, frame: DeviceFrame, connection?: DeviceConnection): Promise<void> {
    if (connection !== undefined) {
      await connection.recorded();
      connection.lastSeenMs = Date.now();
    }
    await this.recordFrame(gatewayId, frame);
  }

  /** Records what a frame says; throws when it is refused or cannot be recorded. */
  private async recordFrame(gatewayId: number, frame: DeviceFrame): Promise<void> {
    switch (frame.type) {
      case "heartbeat":
        await this.deps.gateways.heartbeat(gatewayId, frame);
        return;
      case "ack":
        await this.deps.messages.acknowledge(gatewayId, frame.messageId);
        return;
      case "delivery_report":
        await this.deps.messages.report(gatewayId, frame.messageId, frame.status, frame.errorMessage);
        return;
      case "cancelled":
        await this.deps.messages.cancelledOnGateway(gatewayId, frame.messageId);
        return;
      case "message_received":
        await this.deps.inbound(gatewayId, frame);
        return;
    }
  }

  /** Keeps the presence and the gateway's liveness fresh, at most every third of the presence TTL. */
  private async refresh(connection: DeviceConnection): Promise<void> {
    const interval = (this.deps.idleTimeoutSeconds * 1000) / 3;
    if (Date.now() - connection.lastTouchMs < interval) return;
    connection.lastTouchMs = Date.now();
    await this.deps.presence.hold(connection.gateway.gatewayId, this.deps.taskQueue, connection.id, connection.channel);
    const { active } = await this.deps.gateways.touch(connection.gateway.gatewayId);
    connection.paused = !active;
  }

  /**
   * Forgets a connection that ended. When no newer connection holds the gateway, it goes offline and
   * its messages in flight are told so and fail over.
   */
  async disconnect(connection: DeviceConnection): Promise<void> {
    connection.close(connection.closeReason ?? "device_closed");
    // What the device acknowledged before it went is recorded before its messages in flight fail over.
    await connection.recorded();
    const { gatewayId, deviceId } = connection.gateway;
    this.deps.connections.remove(connection);
    if (connection.closeReason === "replaced") return;
    try {
      const released = await this.deps.presence.release(gatewayId, connection.id);
      if (!released) return;
      await this.deps.gateways.markDisconnected(gatewayId);
      // On shutdown the device reconnects to another instance, which sends its commands again.
      if (connection.closeReason !== "shutdown") await this.deps.messages.gatewayLost(gatewayId);
    } catch (error) {
      this.deps.logger.warn({ err: error, deviceId }, "cleaning up a device connection failed");
    }
    this.deps.logger.info({ deviceId, reason: connection.closeReason }, "device disconnected");
  }

  /** Claims the presence of every device connected here again (Redis came back, perhaps empty). */
  async reclaimPresence(): Promise<void> {
    for (const connection of this.deps.connections.open()) {
      await this.deps.presence.hold(
        connection.gateway.gatewayId,
        this.deps.taskQueue,
        connection.id,
        connection.channel,
      );
    }
  }
}
