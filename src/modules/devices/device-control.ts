import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { GatewayRegistry } from "../gateways/index.js";
import type { KeysService } from "../keys/index.js";
import type { SmsGateStreamEvent } from "./device.types.js";
import type { LiveDevices } from "./device-connections.js";

/** What every instance must act on at once for the devices it holds. */
export type DeviceControlEvent =
  | { type: "key_revoked"; keyId: number }
  | { type: "gateway_active"; gatewayId: number; active: boolean }
  | { type: "message_cancelled"; gatewayId: number; messageId: string }
  | { type: "settings_updated"; gatewayIds: number[] }
  /** An event of the SMSGate app's events stream for these phones (`WebhooksUpdated`, `MessagesExportRequested`). */
  | { type: "smsgate_event"; gatewayIds: number[]; event: SmsGateStreamEvent; data: unknown };

const channel = "smsgw:devices:control";

/** Tells every instance (this one included) of a control event, through Redis. */
export async function publishDeviceControl(redis: Redis, event: DeviceControlEvent): Promise<void> {
  await redis.publish(channel, JSON.stringify(event));
}

function parse(text: string): DeviceControlEvent | undefined {
  try {
    const event = JSON.parse(text) as DeviceControlEvent;
    const types: DeviceControlEvent["type"][] = [
      "key_revoked",
      "gateway_active",
      "message_cancelled",
      "settings_updated",
      "smsgate_event",
    ];
    return types.includes(event.type) ? event : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Applies revocations and gateway toggles to the devices connected to this instance: heard through
 * Redis pub/sub from whichever instance (or CLI) made them, within milliseconds, and checked against
 * the database every `sweepMs` too, so that a message lost while Redis was away is made up for.
 * Returns a function that stops it.
 */
export async function startDeviceControl(deps: {
  redis: Redis;
  connections: LiveDevices;
  keys: Pick<KeysService, "forget" | "onRevoked" | "revokedAmong">;
  gateways: Pick<GatewayRegistry, "onToggled" | "onSmsGateSettingsChanged">;
  /** Hears of messages cancelled while a gateway held them. */
  messages: { onCancelled(listener: (gatewayId: number, messageId: string) => void): void };
  logger: Logger;
  sweepMs: number;
}): Promise<() => Promise<void>> {
  const { connections, logger } = deps;
  const apply = (event: DeviceControlEvent) => {
    if (event.type === "key_revoked") {
      deps.keys.forget(event.keyId);
      connections.revokeKey(event.keyId);
    } else if (event.type === "gateway_active") connections.setActive(event.gatewayId, event.active);
    else if (event.type === "message_cancelled") {
      connections.push(event.gatewayId, { type: "cancel", messageId: event.messageId });
    } else if (event.type === "settings_updated") {
      for (const gatewayId of event.gatewayIds) connections.push(gatewayId, { type: "settings_updated" });
    } else {
      for (const gatewayId of event.gatewayIds)
        connections.push(gatewayId, { type: "smsgate_event", event: event.event, data: event.data });
    }
  };
  const publish = (event: DeviceControlEvent) =>
    publishDeviceControl(deps.redis, event).catch((error: unknown) => {
      // This instance applies it at once all the same; the others catch up with their sweep.
      logger.warn({ err: error, event }, "publishing a device control event failed");
    });
  deps.keys.onRevoked((keyId) => {
    apply({ type: "key_revoked", keyId });
    return publish({ type: "key_revoked", keyId });
  });
  // The instance holding the phone tells it; the others have no connection of it and do nothing.
  deps.messages.onCancelled((gatewayId, messageId) => {
    void publish({ type: "message_cancelled", gatewayId, messageId });
  });
  deps.gateways.onSmsGateSettingsChanged((gatewayIds) => {
    if (gatewayIds.length > 0) void publish({ type: "settings_updated", gatewayIds });
  });
  deps.gateways.onToggled((gatewayId, active) => {
    apply({ type: "gateway_active", gatewayId, active });
    void publish({ type: "gateway_active", gatewayId, active });
  });

  const subscriber = deps.redis.duplicate();
  subscriber.on("error", (error) => logger.warn({ err: error }, "device control subscription error"));
  subscriber.on("message", (_channel: string, text: string) => {
    const event = parse(text);
    if (event !== undefined) apply(event);
  });
  // A Redis that does not answer at start must not keep the server from starting: the first try
  // ends (subscribed, or refused after the client's retries), and the subscription is made again
  // whenever the connection is (again) ready; ioredis also renews it itself.
  const subscribe = () =>
    subscriber
      .subscribe(channel)
      .catch((error: unknown) => logger.warn({ err: error }, "device control not subscribed yet"));
  subscriber.on("ready", () => void subscribe());
  await subscribe();

  const sweep = setInterval(() => {
    deps.keys
      .revokedAmong(connections.connectedKeyIds())
      .then((revoked) => {
        for (const keyId of revoked) apply({ type: "key_revoked", keyId });
      })
      .catch((error: unknown) => logger.warn({ err: error }, "checking connected devices' keys failed"));
  }, deps.sweepMs);
  sweep.unref();

  return async () => {
    clearInterval(sweep);
    await subscriber.quit().catch(() => subscriber.disconnect());
  };
}
