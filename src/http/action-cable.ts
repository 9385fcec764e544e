import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { Logger } from "pino";
import { type WebSocket, WebSocketServer } from "ws";
import type {
  CloseReason,
  ConnectedGateway,
  DeviceConnection,
  DeviceFrame,
  DeviceHub,
} from "../modules/devices/index.js";
import type { KeysService } from "../modules/keys/index.js";
import type { AuthFailureLimiter } from "../modules/rate-limits/index.js";
import { unstorableJsonPath, unstorableTextMessage } from "../shared/text.js";

const protocol = "actioncable-v1-json";
const pingIntervalMs = 3000;
/** Frames one socket may have waiting (before its key is checked, or behind a slow one) before it is closed. */
const maxPendingFrames = 64;
/** Close code for a client that sends faster than its frames can be handled (RFC 6455: policy violation). */
const policyViolation = 1008;

type Incoming = { command?: unknown; identifier?: unknown; data?: unknown };

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const number = (value: unknown) =>
  typeof value === "number" && Number.isFinite(value) ? Math.trunc(value) : undefined;
const string = (value: unknown) => (typeof value === "string" ? value : undefined);

/** A `GatewayChannel` action as the hub takes it; undefined for one it does not know. */
function toFrame(data: Record<string, unknown>): DeviceFrame | undefined {
  switch (data.action) {
    case "heartbeat":
      return {
        type: "heartbeat",
        status: string(data.status),
        batteryLevel: number(data.battery_level),
        signalStrength: number(data.signal_strength),
        messagesInQueue: number(data.messages_in_queue),
      };
    case "delivery_report":
      return {
        type: "delivery_report",
        messageId: string(data.message_id) ?? "",
        status: string(data.status) ?? "",
        errorMessage: string(data.error_message) ?? null,
      };
    case "message_received": {
      const timestamp = string(data.timestamp);
      const at = timestamp === undefined ? undefined : new Date(timestamp);
      return {
        type: "message_received",
        sender: string(data.sender) ?? "",
        message: string(data.message) ?? "",
        timestamp: at === undefined || Number.isNaN(at.getTime()) ? undefined : at,
      };
    }
    case "ack":
      return { type: "ack", messageId: string(data.message_id) ?? "" };
    default:
      return undefined;
  }
}

/** One Action Cable connection of a gateway device. */
class CableSession {
  private subscription: { identifier: string; connection: DeviceConnection } | undefined;
  private queue: Promise<void> = Promise.resolve();
  private pending = 0;
  private readonly pinger: NodeJS.Timeout;

  constructor(
    private readonly socket: WebSocket,
    private readonly hub: DeviceHub,
    private readonly gateway: ConnectedGateway,
    private readonly apiKey: string,
    private readonly logger: Logger,
  ) {
    this.send({ type: "welcome" });
    // Action Cable's own ping every 3 seconds (its clients count a connection stale after 6 s
    // without one); a WebSocket ping, whose pong tells the hub the phone is alive, only as often as
    // the hub pings its other devices: with 10,000 phones a WebSocket ping every 3 seconds was
    // 3,333 pings and 3,333 pongs a second more.
    const socketPingIntervalMs = hub.pingIntervalSeconds * 1000;
    let sinceSocketPing = 0;
    this.pinger = setInterval(() => {
      this.send({ type: "ping", message: Math.floor(Date.now() / 1000) });
      sinceSocketPing += pingIntervalMs;
      if (sinceSocketPing >= socketPingIntervalMs) {
        sinceSocketPing = 0;
        socket.ping();
      }
    }, pingIntervalMs);
    socket.on("pong", () => {
      if (this.subscription !== undefined) void this.hub.alive(this.subscription.connection);
    });
    socket.on("close", () => {
      clearInterval(this.pinger);
      const subscription = this.subscription;
      this.subscription = undefined;
      if (subscription !== undefined) void this.hub.disconnect(subscription.connection);
    });
  }

  send(frame: Record<string, unknown>): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(JSON.stringify(frame));
  }

  /** Handles frames one at a time, in order; a socket that floods the queue is closed. */
  take(text: string): void {
    if (this.pending >= maxPendingFrames) {
      this.logger.warn({ deviceId: this.gateway.deviceId }, "action cable client sends too fast: closed");
      this.socket.close(policyViolation, "too many frames");
      return;
    }
    this.pending += 1;
    this.queue = this.queue
      .then(() => this.handle(text))
      .catch((error: unknown) => this.logger.warn({ err: error }, "action cable frame failed"))
      .finally(() => {
        this.pending -= 1;
      });
  }

  private async handle(text: string): Promise<void> {
    const frame = parse(text) as Incoming | undefined;
    if (typeof frame !== "object" || frame === null || typeof frame.identifier !== "string") return;
    const identifier = frame.identifier;
    if (frame.command === "subscribe") return this.subscribe(identifier);
    if (frame.command === "unsubscribe") {
      if (this.subscription?.identifier === identifier) {
        const { connection } = this.subscription;
        this.subscription = undefined;
        await this.hub.disconnect(connection);
      }
      return;
    }
    if (frame.command === "message" && this.subscription?.identifier === identifier && typeof frame.data === "string") {
      const data = parse(frame.data);
      if (typeof data !== "object" || data === null) return;
      const unstorable = unstorableJsonPath(data, "data");
      if (unstorable !== undefined) {
        this.logger.info(
          { deviceId: this.gateway.deviceId },
          `action cable frame ignored: ${unstorableTextMessage(unstorable)}`,
        );
        return;
      }
      const deviceFrame = toFrame(data as Record<string, unknown>);
      if (deviceFrame !== undefined) await this.hub.handle(this.subscription.connection, deviceFrame);
    }
  }

  /** Confirms a `GatewayChannel` subscription (again, harmlessly, when repeated). */
  private async subscribe(identifier: string): Promise<void> {
    const parsed = parse(identifier) as { channel?: unknown; api_key_digest?: unknown } | undefined;
    const digest = createHash("sha256").update(this.apiKey).digest("hex");
    const digestMatches =
      parsed?.api_key_digest === undefined ||
      (typeof parsed.api_key_digest === "string" &&
        parsed.api_key_digest.length === digest.length &&
        timingSafeEqual(Buffer.from(parsed.api_key_digest), Buffer.from(digest)));
    if (parsed?.channel !== "GatewayChannel" || !digestMatches) {
      this.send({ identifier, type: "reject_subscription" });
      return;
    }
    if (this.subscription === undefined) {
      let connection: DeviceConnection;
      try {
        connection = await this.hub.connect(this.gateway, "cable");
      } catch (error) {
        // This instance is full, or the database did not answer: the client is told to reconnect
        // (Action Cable's clients do, after a pause), as a server going away tells it.
        this.logger.warn({ err: error, deviceId: this.gateway.deviceId }, "action cable subscription not taken");
        this.send({ type: "disconnect", reason: "remote", reconnect: true });
        this.socket.close();
        return;
      }
      this.subscription = { identifier, connection };
      void this.pump(identifier, connection);
    }
    this.send({ identifier, type: "confirm_subscription" });
  }

  /** Sends the hub's commands as channel messages until the hub ends the connection. */
  private async pump(identifier: string, connection: DeviceConnection): Promise<void> {
    for await (const command of connection.commands) {
      if (command.type === "send_sms") {
        this.send({
          identifier,
          message: {
            action: "send_sms",
            message_id: command.messageId,
            recipient: command.recipient,
            message: command.message,
          },
        });
      }
      // Hub pings are not needed here: Action Cable pings every 3 seconds on its own.
    }
    if (this.subscription?.connection !== connection) return;
    const reconnect = connection.closeReason === "shutdown" || connection.closeReason === "idle";
    const reasons: Partial<Record<CloseReason, string>> = { shutdown: "server_restart", revoked: "unauthorized" };
    const reason =
      connection.closeReason === undefined ? "closed" : (reasons[connection.closeReason] ?? connection.closeReason);
    this.send({ type: "disconnect", reason, reconnect });
    this.socket.close();
  }
}

/**
 * Action Cable on `/cable`, so gateway apps built for the original Rails server connect unchanged:
 * `?api_key=gw_live_…`, subprotocol `actioncable-v1-json`, `welcome`, pings every 3 seconds,
 * `GatewayChannel` subscriptions, and the documented `send_sms`, `heartbeat`, `delivery_report` and
 * `message_received` frames, all through the same device hub as the gRPC stream.
 */
export function createActionCable(deps: {
  hub: DeviceHub;
  keys: KeysService;
  authFailures: AuthFailureLimiter;
  logger: Logger;
}) {
  const server = new WebSocketServer({
    noServer: true,
    maxPayload: 64 * 1024,
    // The official client closes the connection unless its subprotocol is selected; some native
    // clients offer none, and are served all the same.
    handleProtocols: (protocols) => (protocols.has(protocol) ? protocol : false),
  });

  const accept = (socket: WebSocket, request: IncomingMessage) => {
    // A frame over the size limit or with invalid UTF-8 makes ws close the socket (1009, 1007) and
    // report it here: one line in the log, and the rest of the server goes on.
    socket.on("error", (error: Error & { code?: string }) =>
      deps.logger.info({ code: error.code, err: error.message }, "action cable socket closed on a bad frame"),
    );
    // Frames that arrive while the key is being checked wait for it.
    const early: string[] = [];
    const buffer = (data: Buffer) => {
      if (early.length >= maxPendingFrames) socket.close(policyViolation, "too many frames");
      else early.push(data.toString("utf8"));
    };
    socket.on("message", buffer);
    const apiKey = new URL(request.url ?? "/", "http://cable").searchParams.get("api_key") ?? "";
    const peer = request.socket.remoteAddress ?? "unknown";
    const refuse = () => {
      socket.send(JSON.stringify({ type: "disconnect", reason: "unauthorized", reconnect: false }));
      socket.close();
    };
    // An address that failed authentication too often is refused before its key is even looked at.
    if (deps.authFailures.blockedFor(peer) !== undefined) {
      refuse();
      return;
    }
    deps.keys
      .authenticate(apiKey)
      .then(async (principal) => {
        if (principal?.kind !== "gateway") {
          if (principal === undefined) await deps.authFailures.failed(peer);
          refuse();
          return;
        }
        const session = new CableSession(socket, deps.hub, principal, apiKey, deps.logger);
        socket.off("message", buffer);
        socket.on("message", (data: Buffer) => session.take(data.toString("utf8")));
        for (const text of early) session.take(text);
      })
      .catch((error: unknown) => {
        deps.logger.error({ err: error }, "action cable authentication failed");
        socket.close(1011);
      });
  };

  return {
    /** Takes a WebSocket upgrade for `/cable`. */
    upgrade(request: IncomingMessage, socket: Socket, head: Buffer): void {
      server.handleUpgrade(request, socket, head, (websocket) => accept(websocket, request));
    },
    /** Closes every socket (the hub has already told each session to end). */
    close(): void {
      for (const client of server.clients) client.terminate();
      server.close();
    },
  };
}
