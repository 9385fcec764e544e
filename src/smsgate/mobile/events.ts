import type { FastifyInstance, FastifyReply } from "fastify";
import type { DeviceConnection } from "../../modules/devices/index.js";
import type { MobileContext } from "./context.js";

// The phone's events stream (`GET /events`, the app's `SSEManager`): Server-Sent Events, each named
// as SMSGate's server names it (`modules/sse/service.go`, the app's `ExternalEventType`).

/** The events stream's keepalive comment, as SMSGate's server sends it. */
const keepaliveMs = 15_000;

/** One event of the stream: its name, and its data as JSON (`null` for those that carry none). */
const event = (name: string, data: unknown) => `event: ${name}\ndata: ${JSON.stringify(data ?? null)}\n\n`;

/**
 * Serves the stream: `MessageEnqueued` when a message is given to the phone, `MessageCancelled`
 * (`{"messageId"}`) when its sender cancels one the phone holds, `SettingsUpdated` and
 * `WebhooksUpdated` when what it is told to do changed, `MessagesExportRequested` (`{since, until,
 * messageTypes, …}`) when it is asked to post the SMS it received again, and a `:keepalive` comment
 * every 15 seconds (more often when the presence TTL is short), each of which keeps the phone
 * present. It ends when the phone goes, or its connection is replaced, revoked or shut down.
 */
async function serveEvents(context: MobileContext, connection: DeviceConnection, reply: FastifyReply) {
  const { deps } = context;
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no" });
  (raw as { flushHeaders?: () => void }).flushHeaders?.();
  const write = (text: string) => {
    if (!raw.destroyed && !raw.writableEnded) raw.write(text);
  };
  raw.once("close", () => connection.close("device_closed"));
  const keepalive = setInterval(
    () => {
      write(":keepalive\n\n");
      deps.hub.alive(connection).catch(() => undefined);
    },
    Math.min(keepaliveMs, (deps.idleTimeoutSeconds * 1000) / 3),
  );
  keepalive.unref();
  try {
    for await (const command of connection.commands) {
      if (command.type === "send_sms") write(event("MessageEnqueued", null));
      else if (command.type === "cancel") write(event("MessageCancelled", { messageId: command.messageId }));
      else if (command.type === "settings_updated") write(event("SettingsUpdated", null));
      else if (command.type === "smsgate_event") write(event(command.event, command.data));
    }
  } finally {
    clearInterval(keepalive);
    if (!raw.writableEnded) raw.end();
    await deps.hub.disconnect(connection);
  }
}

/** The route of the events stream. */
export function eventRoutes(mobile: FastifyInstance, context: MobileContext): void {
  mobile.get("/events", async (request, reply) => {
    const gateway = await context.device(request);
    const connection = await context.deps.hub.connect(gateway, "sse");
    await serveEvents(context, connection, reply);
  });
}
