import { createHmac, randomInt, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { ConnectedGateway, DeviceConnection, DeviceHub, LiveDevices } from "../modules/devices/index.js";
import type { EventsService } from "../modules/events/index.js";
import {
  appSettings,
  type GatewayMetadata,
  type GatewayRegistry,
  type StoredSmsGateSettings,
} from "../modules/gateways/index.js";
import type { InboundService } from "../modules/inbound/index.js";
import type { KeysService } from "../modules/keys/index.js";
import type { MessagesService, UnacknowledgedCommand } from "../modules/messages/index.js";
import type { AuthFailureLimiter } from "../modules/rate-limits/index.js";
import { DomainError } from "../shared/errors.js";
import { randomToken } from "../shared/ids.js";
import {
  badRequest,
  basicPair,
  credentials,
  isObject,
  jsonBody,
  SmsGateError,
  smsGateScope,
  unauthorized,
} from "./smsgate-common.js";

// The mobile API of SMSGate's Android app in private-server mode (github.com/capcom6/android-sms-gateway,
// `GatewayApi.kt`; the server side is github.com/android-sms-gateway/server, `handlers/mobile.go`),
// so that a phone running the unchanged app is an smsgw gateway like any other: registered with a
// registration token, authenticated by its gateway key (the app's device token), told of messages on
// its Server-Sent Events stream and fetching them, reporting full snapshots of their state.

/** Where the app's API is served; the app's "API URL" is the server's address and one of these. */
export const smsGateMobilePrefixes = ["/api/mobile/v1", "/mobile/v1"] as const;

/** Messages one fetch returns at most (as SMSGate's server). */
const maxFetched = 100;
/** Snapshots one report may carry. */
const maxSnapshots = 1000;
/** The events stream's keepalive comment, as SMSGate's server sends it. */
const keepaliveMs = 15_000;
/** How long a sign-in code (`GET /user/code`) lets a phone join its account. */
const codeTtlSeconds = 300;
const codeKey = (code: string) => `smsgw:smsgate:code:${code}`;
const maxNameLength = 255;
/** How far a signed webhook's `X-Timestamp` may be from now (either way) before it is refused. */
const signatureWindowSeconds = 300;
const signatureKey = (signature: string) => `smsgw:smsgate:sig:${signature}`;
/**
 * The events smsgw asks each phone to post to it, as the app names them: its inbound SMS, and its
 * pings (relayed to SMSGate webhooks that want `system:ping`; the app pings every
 * `ping.interval_seconds` when that is set).
 */
const inboundEvents = ["sms:received", "sms:data-received", "system:ping"] as const;
/** Where, under the API's prefix, the phones post them. */
const inboundPath = "/webhooks/received";

/** What the app reports of a message, and what smsgw makes of it. */
const states = ["Pending", "Processed", "Sent", "Delivered", "Failed", "Cancelling", "Cancelled"] as const;
type ProcessingState = (typeof states)[number];

/** What the door needs. */
export interface SmsGateMobileServices {
  keys: Pick<
    KeysService,
    "authenticate" | "registration" | "account" | "createAccount" | "changePassword" | "gatewayKeyLive"
  >;
  gateways: Pick<GatewayRegistry, "register" | "updateMetadata" | "idOf" | "find">;
  inbound: Pick<InboundService, "receive">;
  events: Pick<EventsService, "emit">;
  messages: Pick<MessagesService, "fetch" | "acknowledge" | "report" | "cancelledOnGateway">;
  hub: Pick<DeviceHub, "connect" | "alive" | "disconnect">;
  connections: Pick<LiveDevices, "openOf">;
  authFailures: AuthFailureLimiter;
  redis: Redis;
  logger: Logger;
  /** The presence TTL: an events stream proves the phone alive at least three times within it. */
  idleTimeoutSeconds: number;
  /** The address phones reach the server at (else the one a request was sent to). */
  publicUrl: string | undefined;
  /** The key a phone signs the webhooks it posts to smsgw with (derived from the server's secret). */
  signingKeyOf: (deviceId: string) => string;
}

/** Whether `signature` is the app's hex HMAC-SHA256 of the body and the timestamp with `key`. */
function signedBy(key: string, body: string, timestamp: string, signature: string): boolean {
  const expected = createHmac("sha256", key)
    .update(body + timestamp)
    .digest();
  const given = Buffer.from(signature, "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** An optional string field: undefined when absent or null, refused when of another type. */
function optionalString(body: Record<string, unknown>, field: string, max = maxNameLength): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw badRequest(`${field} must be a string`);
  if (value.length > max) throw badRequest(`${field} is too long (at most ${max} characters)`);
  return value;
}

/** The app's SIM cards, kept as they came (the app shows only the last digits of a number). */
function simCards(body: Record<string, unknown>): unknown[] | undefined {
  const value = body.simCards;
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.length > 8 || !value.every(isObject)) {
    throw badRequest("simCards must be a list of at most 8 objects");
  }
  return value.map((card) => ({
    slotIndex: typeof card.slotIndex === "number" ? card.slotIndex : null,
    simNumber: typeof card.simNumber === "number" ? card.simNumber : null,
    phoneNumber: typeof card.phoneNumber === "string" ? card.phoneNumber.slice(0, 32) : null,
    carrierName: typeof card.carrierName === "string" ? card.carrierName.slice(0, 64) : null,
    iccid: typeof card.iccid === "string" ? card.iccid.slice(0, 32) : null,
  }));
}

/**
 * A message as the app takes it (`GatewayApi.Message`; SMSGate's server writes it with
 * `MessageToMobileDTO`): text as `message` and `textMessage`, or a data SMS as `dataMessage`.
 */
function mobileMessage(command: UnacknowledgedCommand) {
  const content =
    command.dataPort === null
      ? { message: command.body, textMessage: { text: command.body } }
      : { dataMessage: { data: command.body, port: command.dataPort } };
  return {
    id: command.messageId,
    ...content,
    phoneNumbers: [command.recipient],
    ...(command.simNumber === null ? {} : { simNumber: command.simNumber }),
    isEncrypted: command.encrypted,
    withDeliveryReport: command.deliveryReport,
    priority: command.priority,
    validUntil: command.expiresAt.toISOString(),
    createdAt: command.createdAt.toISOString(),
    state: "Pending",
  };
}

/** One snapshot of `PATCH /message`, checked. */
interface Snapshot {
  id: string;
  state: ProcessingState;
  error: string | null;
}

function snapshots(body: unknown): Snapshot[] {
  if (!Array.isArray(body)) throw badRequest("The body must be a JSON list of messages");
  if (body.length > maxSnapshots) throw badRequest(`At most ${maxSnapshots} messages at once`);
  return body.map((item, i) => {
    if (!isObject(item)) throw badRequest(`[${i}] must be an object`);
    const { id, state } = item;
    if (typeof id !== "string" || id === "" || id.length > 64) throw badRequest(`[${i}].id must be a message id`);
    if (typeof state !== "string" || !(states as readonly string[]).includes(state)) {
      throw badRequest(`[${i}].state must be one of ${states.join(", ")}`);
    }
    const recipients = item.recipients;
    if (recipients !== undefined && recipients !== null && !Array.isArray(recipients)) {
      throw badRequest(`[${i}].recipients must be a list`);
    }
    // The recipient's error says why it failed (the app's "Send result: …", "Delivery result from SC …").
    const failed = (Array.isArray(recipients) ? recipients : []).find(
      (recipient) => isObject(recipient) && typeof recipient.error === "string" && recipient.error !== "",
    ) as { error: string } | undefined;
    return { id, state: state as ProcessingState, error: failed?.error.slice(0, 1000) ?? null };
  });
}

/**
 * The mobile API of the SMSGate app, on `app` (a scope of its own: errors answer in the app's shape,
 * `{"message": ...}`), under each of `smsGateMobilePrefixes`.
 */
export async function registerSmsGateMobile(app: FastifyInstance, deps: SmsGateMobileServices): Promise<void> {
  const { logger } = deps;

  const peerOf = (request: FastifyRequest) => request.socket.remoteAddress ?? "unknown";

  /** Counts a failed authentication from the caller's address and refuses it. */
  const refuse = async (request: FastifyRequest): Promise<never> => {
    await deps.authFailures.failed(peerOf(request));
    throw unauthorized();
  };

  /** The account `Basic login:password` names, or undefined. */
  const basicAccount = async (value: string) => {
    const pair = basicPair(value);
    return pair === undefined ? undefined : deps.keys.account(pair.login, pair.password);
  };

  /** The calling phone (its device token is its gateway key); 401 otherwise. */
  const device = async (request: FastifyRequest): Promise<ConnectedGateway> => {
    if (deps.authFailures.blockedFor(peerOf(request)) !== undefined) throw unauthorized();
    const given = credentials(request);
    if (given?.scheme !== "bearer") return refuse(request);
    const principal = await deps.keys.authenticate(given.value);
    if (principal?.kind !== "gateway") return refuse(request);
    return { gatewayId: principal.gatewayId, deviceId: principal.deviceId, keyId: principal.keyId };
  };

  /**
   * Every call of a phone says it is there: while its events stream is open it is connected through
   * it; otherwise its calls hold a connection of channel `poll`, which ends as any connection does
   * when the phone stops calling (and its unacknowledged messages then go to other phones).
   */
  const present = async (gateway: ConnectedGateway): Promise<void> => {
    const open = deps.connections.openOf(gateway.gatewayId);
    if (open !== undefined && open.gateway.keyId === gateway.keyId) {
      await deps.hub.alive(open);
      return;
    }
    const connection = await deps.hub.connect(gateway, "poll");
    // The phone fetches its messages itself: a command given to it needs no word (it is read from
    // the database at its next fetch), and the connection ends when the hub closes it.
    void (async () => {
      for await (const _command of connection.commands) {
        // nothing to send
      }
      await deps.hub.disconnect(connection);
    })();
  };

  const registerDevice = async (request: FastifyRequest, reply: FastifyReply) => {
    if (deps.authFailures.blockedFor(peerOf(request)) !== undefined) throw unauthorized();
    const given = credentials(request);
    let account: { login: string; keyId: number } | undefined;
    if (given?.scheme === "bearer") {
      if ((await deps.keys.registration(given.value)) === undefined) return refuse(request);
    } else if (given?.scheme === "basic") {
      account = await basicAccount(given.value);
      if (account === undefined) return refuse(request);
    } else if (given?.scheme === "code") {
      const held = /^\d{6}$/.test(given.value) ? await deps.redis.getdel(codeKey(given.value)) : null;
      if (held === null) return refuse(request);
      const [keyId, login] = held.split(" ");
      account = { keyId: Number(keyId), login: login ?? "" };
    } else {
      return refuse(request);
    }
    const body = jsonBody(request);
    const name = optionalString(body, "name") ?? "";
    const deviceId = randomToken(21);
    const metadata: GatewayMetadata = {
      app: "SMSGate",
      user_agent: String(request.headers["user-agent"] ?? "").slice(0, 128),
    };
    const cards = simCards(body);
    if (cards !== undefined) metadata.sim_cards = cards;
    const pushToken = optionalString(body, "pushToken", 4096);
    if (pushToken !== undefined) metadata.push_token = pushToken;
    if (account !== undefined) metadata.account = account.login;
    const opened = await deps.gateways.register(
      { deviceId, name: name.trim() === "" ? `SMSGate ${deviceId.slice(0, 6)}` : name, metadata },
      // A phone signed up with the registration token opens an account of its own, in the same transaction.
      account !== undefined
        ? undefined
        : async (em, gateway) => {
            const opening = await deps.keys.createAccount(`SMSGate phone ${deviceId}`, em);
            gateway.metadata = { ...gateway.metadata, account: opening.login };
            return opening;
          },
    );
    logger.info({ deviceId, account: account?.login ?? opened.also?.login }, "SMSGate phone registered");
    return reply.code(201).send({
      id: deviceId,
      token: opened.apiKey,
      login: account?.login ?? opened.also?.login,
      ...(opened.also === undefined ? {} : { password: opened.also.password }),
    });
  };

  const routes = async (mobile: FastifyInstance) => {
    smsGateScope(mobile, { withCode: false });

    mobile.post("/device", registerDevice);

    mobile.get("/device", async (request) => ({ externalIp: request.ip }));

    mobile.patch("/device", async (request, reply) => {
      const gateway = await device(request);
      const body = jsonBody(request);
      const id = optionalString(body, "id");
      if (id !== undefined && id !== gateway.deviceId) throw new SmsGateError(403, "Forbidden");
      await present(gateway);
      const cards = simCards(body);
      // No push token means no push: such a phone is told of messages on its events stream.
      await deps.gateways.updateMetadata(gateway.gatewayId, {
        push_token: optionalString(body, "pushToken", 4096) ?? null,
        ...(cards === undefined ? {} : { sim_cards: cards }),
      });
      return reply.code(204).send();
    });

    const fetchMessages = async (request: FastifyRequest) => {
      const gateway = await device(request);
      const { order } = request.query as { order?: string };
      if (order !== undefined && order !== "lifo" && order !== "fifo") throw badRequest("order must be lifo or fifo");
      await present(gateway);
      const commands = await deps.messages.fetch(gateway.gatewayId, {
        newestFirst: order === "lifo",
        limit: maxFetched,
      });
      return commands.map(mobileMessage);
    };
    mobile.get("/message", fetchMessages);
    mobile.get("/messages", fetchMessages);

    const reportMessages = async (request: FastifyRequest, reply: FastifyReply) => {
      const gateway = await device(request);
      const items = snapshots(request.body);
      await present(gateway);
      for (const item of items) {
        try {
          await applySnapshot(gateway.gatewayId, item);
        } catch (error) {
          // A stale or foreign snapshot changes nothing; the others go on. An outage fails the call,
          // and the app sends its snapshots again.
          if (!(error instanceof DomainError)) throw error;
          logger.info(
            { deviceId: gateway.deviceId, messageId: item.id, state: item.state, err: error.message },
            "SMSGate snapshot changed nothing",
          );
        }
      }
      return reply.code(204).send();
    };
    mobile.patch("/message", reportMessages);
    mobile.patch("/messages", reportMessages);

    // The phone posts the SMS it receives to smsgw, as webhooks of its own.
    mobile.get("/webhooks", async (request) => {
      await present(await device(request));
      const url = `${deps.publicUrl ?? `${request.protocol}://${request.host}`}${mobile.prefix}${inboundPath}`;
      return inboundEvents.map((event) => ({ id: `smsgw-${event.replace(":", "-")}`, deviceId: null, url, event }));
    });

    // What smsgw wants the phone to do: SSE for real time, and the key it signs its webhooks with.
    // Never a `cloud_url`: the app would take it as its server's address.
    mobile.get("/settings", async (request) => {
      const gateway = await device(request);
      await present(gateway);
      const record = await deps.gateways.find(gateway.gatewayId);
      const settings = (record?.metadata.smsgate_settings ?? {}) as StoredSmsGateSettings;
      return appSettings(settings, deps.signingKeyOf(gateway.deviceId));
    });

    mobile.post(inboundPath, receiveWebhook);

    // The app's "change password" (Settings → Cloud Server): the account's, for every phone of it.
    mobile.patch("/user/password", async (request, reply) => {
      const gateway = await device(request);
      const body = jsonBody(request);
      const current = optionalString(body, "currentPassword", 128) ?? "";
      const next = optionalString(body, "newPassword", 128);
      if (next === undefined) throw badRequest("newPassword is required");
      if (next.length < 14) throw badRequest("newPassword must have at least 14 characters");
      await present(gateway);
      const login = (await deps.gateways.find(gateway.gatewayId))?.metadata.account;
      const changed = typeof login === "string" && (await deps.keys.changePassword(login, current, next));
      if (!changed) throw new SmsGateError(401, "failed to change password");
      return reply.code(204).send();
    });

    mobile.get("/user/code", async (request) => {
      if (deps.authFailures.blockedFor(peerOf(request)) !== undefined) throw unauthorized();
      const given = credentials(request);
      const account = given?.scheme === "basic" ? await basicAccount(given.value) : undefined;
      if (account === undefined) return refuse(request);
      for (;;) {
        const code = String(randomInt(0, 1_000_000)).padStart(6, "0");
        const set = await deps.redis.set(
          codeKey(code),
          `${account.keyId} ${account.login}`,
          "EX",
          codeTtlSeconds,
          "NX",
        );
        if (set === "OK") return { code, validUntil: new Date(Date.now() + codeTtlSeconds * 1000).toISOString() };
      }
    });

    mobile.get("/events", async (request, reply) => {
      const gateway = await device(request);
      const connection = await deps.hub.connect(gateway, "sse");
      await serveEvents(connection, reply);
    });
  };

  /**
   * A webhook a phone posted (`{id, webhookId, event, deviceId, payload}`), signed with its signing
   * key: `X-Signature` is the hex HMAC-SHA256 of the body and `X-Timestamp`. One signed too long ago
   * or in the future, or seen before, is refused; a received SMS is stored once (the app retries:
   * its `messageId` names it).
   */
  const receiveWebhook = async (request: FastifyRequest, reply: FastifyReply) => {
    const body = jsonBody(request);
    const raw = (request as FastifyRequest & { rawBody?: string }).rawBody ?? "";
    const deviceId = optionalString(body, "deviceId") ?? "";
    const timestamp = String(request.headers["x-timestamp"] ?? "");
    const signature = String(request.headers["x-signature"] ?? "");
    const gatewayId = deviceId === "" ? null : await deps.gateways.idOf(deviceId);
    const fresh =
      /^\d{1,12}$/.test(timestamp) && Math.abs(Date.now() / 1000 - Number(timestamp)) <= signatureWindowSeconds;
    if (gatewayId === null || !fresh || !/^[0-9a-f]{64}$/.test(signature)) return refuse(request);
    if (!signedBy(deps.signingKeyOf(deviceId), raw, timestamp, signature)) return refuse(request);
    // A phone whose token was revoked is shut out of this door too.
    if (!(await deps.keys.gatewayKeyLive(gatewayId))) return refuse(request);
    const first = await deps.redis.set(signatureKey(signature), "1", "EX", 2 * signatureWindowSeconds, "NX");
    if (first !== "OK") throw unauthorized();
    const event = optionalString(body, "event");
    if (event === "system:ping") {
      // The app's ping carries its health report (`{"health": {...}}`), passed on as it came.
      const health = isObject(body.payload) && isObject(body.payload.health) ? body.payload.health : {};
      await deps.events.emit({ event: "system_ping", gateway_id: deviceId, health });
      return reply.code(200).send({});
    }
    if (event !== "sms:received" && event !== "sms:data-received") return reply.code(200).send({});
    if (!isObject(body.payload)) throw badRequest("payload must be an object");
    const payload = body.payload;
    const messageId = optionalString(payload, "messageId", 64);
    const sender = optionalString(payload, "sender", 64) ?? optionalString(payload, "phoneNumber", 64);
    const text =
      event === "sms:received" ? optionalString(payload, "message", 10_000) : optionalString(payload, "data", 10_000);
    const receivedAt = new Date(optionalString(payload, "receivedAt", 64) ?? "");
    if (sender === undefined || text === undefined) throw badRequest("payload needs a sender and a message");
    await deps.inbound.receive(gatewayId, {
      sender,
      message: text,
      timestamp: Number.isNaN(receivedAt.getTime()) ? undefined : receivedAt,
      reportId: messageId,
    });
    return reply.code(200).send({});
  };

  /** Moves a message as the phone's snapshot of it says. */
  const applySnapshot = async (gatewayId: number, item: Snapshot): Promise<void> => {
    switch (item.state) {
      // SMSGate's server stores a reported Pending as Processed: the phone has it, it is not served again.
      case "Pending":
      case "Processed":
        return deps.messages.acknowledge(gatewayId, item.id);
      case "Sent":
        return deps.messages.report(gatewayId, item.id, "sent", null);
      case "Delivered":
        return deps.messages.report(gatewayId, item.id, "delivered", null);
      case "Failed":
        return deps.messages.report(gatewayId, item.id, "failed", item.error ?? "Failed on the phone");
      case "Cancelled":
        return deps.messages.cancelledOnGateway(gatewayId, item.id);
      case "Cancelling":
        return;
    }
  };

  /**
   * The events stream: `MessageEnqueued` (data `null`) when a message is given to the phone,
   * `MessageCancelled` (`{"messageId"}`) when its sender cancels one the phone holds,
   * `SettingsUpdated` (data `null`) when an operator changed what it is told to do, and a
   * `:keepalive` comment every 15 seconds (more often when the presence TTL is short), each of which
   * keeps the phone present. It ends when the phone goes, or its connection is replaced, revoked or
   * shut down.
   */
  const serveEvents = async (connection: DeviceConnection, reply: FastifyReply) => {
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
        if (command.type === "send_sms") write("event: MessageEnqueued\ndata: null\n\n");
        else if (command.type === "cancel") {
          write(`event: MessageCancelled\ndata: ${JSON.stringify({ messageId: command.messageId })}\n\n`);
        } else if (command.type === "settings_updated") write("event: SettingsUpdated\ndata: null\n\n");
      }
    } finally {
      clearInterval(keepalive);
      if (!raw.writableEnded) raw.end();
      await deps.hub.disconnect(connection);
    }
  };

  for (const prefix of smsGateMobilePrefixes) await app.register(routes, { prefix });
}
