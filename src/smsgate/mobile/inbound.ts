import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { appSettings, type StoredSmsGateSettings } from "../../modules/gateways/index.js";
import { badRequest, isObject, jsonBody, optionalString } from "../http.js";
import { fresh, signedBy } from "../replay-guard.js";
import type { MobileContext } from "./context.js";
import { simCards } from "./device.js";

// What the phone posts to smsgw, and what it is told to do: it posts the SMS it receives (and its
// pings, MMS and starts when its account wants those) as webhooks of its own, listed for it by
// `GET /webhooks`; `GET /settings` is what it is told to do.

/** Where, under the API's prefix, the phones post them. */
const inboundPath = "/webhooks/received";
/** The events every phone posts: the SMS it receives, which smsgw keeps in its inbox. */
const alwaysPosted = ["sms:received", "sms:data-received"] as const;
/** The events a phone posts only when its account has a webhook for them (each costs the phone a call). */
const postedWhenWanted = ["system:ping", "mms:received", "mms:downloaded", "app:started"] as const;
/** Each posted event that is not an SMS, as the smsgw event it is recorded as. */
const relayed: Record<string, string> = {
  "system:ping": "system_ping",
  "mms:received": "mms_received",
  "mms:downloaded": "mms_downloaded",
  "app:started": "app_started",
};

/** The events the phone is to post: every SMS, and what its account has webhooks for. */
async function postedEvents(context: MobileContext, gatewayId: number): Promise<string[]> {
  const account = (await context.deps.gateways.find(gatewayId))?.accountKeyId ?? null;
  const wanted = new Set(
    account === null ? [] : (await context.deps.webhooks.listSmsGate(account)).map((hook) => hook.event),
  );
  return [...alwaysPosted, ...postedWhenWanted.filter((event) => wanted.has(event))];
}

/** A number field of a payload, when it is a whole number. */
const whole = (payload: Record<string, unknown>, field: string) =>
  typeof payload[field] === "number" && Number.isInteger(payload[field]) ? (payload[field] as number) : undefined;

/**
 * A webhook a phone posted (`{id, webhookId, event, deviceId, payload}`), signed with its signing
 * key: `X-Signature` is the hex HMAC-SHA256 of the body and `X-Timestamp`. One signed too long ago
 * or in the future, or seen before, is refused. A received SMS is the device frame every channel
 * sends for one (stored once: the app retries, and its `messageId` names it); the other events are
 * recorded for the account's webhooks as the phone sent them.
 */
async function receiveWebhook(context: MobileContext, request: FastifyRequest, reply: FastifyReply) {
  const { deps } = context;
  const body = jsonBody(request);
  const raw = (request as FastifyRequest & { rawBody?: string }).rawBody ?? "";
  const deviceId = optionalString(body, "deviceId") ?? "";
  const timestamp = String(request.headers["x-timestamp"] ?? "");
  const signature = String(request.headers["x-signature"] ?? "");
  const gatewayId = deviceId === "" ? null : await deps.gateways.idOf(deviceId);
  if (gatewayId === null || !fresh(timestamp)) return context.refuse(request);
  if (!signedBy(deps.signingKeyOf(deviceId), raw, timestamp, signature)) return context.refuse(request);
  // A phone whose token was revoked is shut out of this door too.
  if (!(await deps.keys.gatewayKeyLive(gatewayId))) return context.refuse(request);
  if (!(await context.replays.first(signature))) return context.refuse(request);
  const event = optionalString(body, "event") ?? "";
  const payload = isObject(body.payload) ? body.payload : {};
  const relayedAs = relayed[event];
  if (relayedAs !== undefined) {
    if (event === "app:started") {
      const cards = simCards(payload);
      if (cards !== undefined) await deps.gateways.updateMetadata(gatewayId, { sim_cards: cards });
    }
    // As the phone sent it (the app's `health`, MMS fields, SIM cards), named by its device.
    await deps.events.emit({ ...payload, event: relayedAs as "system_ping", gateway_id: deviceId });
    return reply.code(200).send({});
  }
  if (event !== "sms:received" && event !== "sms:data-received") return reply.code(200).send({});
  if (!isObject(body.payload)) throw badRequest("payload must be an object");
  const data = event === "sms:data-received";
  const sender = optionalString(payload, "sender", 64) ?? optionalString(payload, "phoneNumber", 64);
  const text = optionalString(payload, data ? "data" : "message", 10_000);
  if (sender === undefined || text === undefined) throw badRequest("payload needs a sender and a message");
  const receivedAt = new Date(optionalString(payload, "receivedAt", 64) ?? "");
  const recipient = optionalString(payload, "recipient", 64);
  const simNumber = whole(payload, "simNumber");
  await context.reportSigned(gatewayId, {
    type: "message_received",
    sender,
    message: text,
    timestamp: Number.isNaN(receivedAt.getTime()) ? undefined : receivedAt,
    reportId: optionalString(payload, "messageId", 64),
    ...(data ? { kind: "data" as const } : {}),
    ...(recipient === undefined ? {} : { recipient }),
    ...(simNumber === undefined ? {} : { simNumber }),
  });
  return reply.code(200).send({});
}

/** The routes of what the phone posts and is told. */
export function inboundRoutes(mobile: FastifyInstance, context: MobileContext): void {
  const { deps } = context;

  mobile.get("/webhooks", async (request) => {
    const gateway = await context.device(request);
    await context.present(gateway);
    const url = `${deps.publicUrl ?? `${request.protocol}://${request.host}`}${mobile.prefix}${inboundPath}`;
    return (await postedEvents(context, gateway.gatewayId)).map((event) => ({
      id: `smsgw-${event.replace(":", "-")}`,
      deviceId: null,
      url,
      event,
    }));
  });

  // What smsgw wants the phone to do: SSE for real time, and the key it signs its webhooks with.
  // Never a `cloud_url`: the app would take it as its server's address.
  mobile.get("/settings", async (request) => {
    const gateway = await context.device(request);
    await context.present(gateway);
    const record = await deps.gateways.find(gateway.gatewayId);
    const settings = (record?.metadata.smsgate_settings ?? {}) as StoredSmsGateSettings;
    return appSettings(settings, deps.signingKeyOf(gateway.deviceId));
  });

  mobile.post(inboundPath, (request, reply) => receiveWebhook(context, request, reply));
}
