import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import {
  appSettings,
  type GatewayRecord,
  type GatewayRegistry,
  type StoredSmsGateSettings,
} from "../modules/gateways/index.js";
import type { InboundService } from "../modules/inbound/index.js";
import type { KeysService, Principal } from "../modules/keys/index.js";
import type { Caller, GroupRecipientRow, GroupSendInput, MessagesService } from "../modules/messages/index.js";
import type { AuthFailureLimiter, RateLimiter } from "../modules/rate-limits/index.js";
import type { WebhookDispatcher } from "../modules/webhooks/index.js";
import { httpStatusOfDomain } from "../rpc/errors.js";
import { DomainError } from "../shared/errors.js";
import { randomToken } from "../shared/ids.js";
import type { Metrics } from "../shared/metrics.js";
import type { SecretBox } from "../shared/secret-box.js";
import type { Health } from "./health.js";
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

// SMSGate's third-party API (github.com/android-sms-gateway/server, `handlers/*/3rdparty.go`; the
// shapes are those of github.com/android-sms-gateway/client-go), so that SMSGate's client libraries
// and what is built on them work with smsgw unchanged. A logical message of several recipients is
// stored as one smsgw message per recipient under the client's id: each recipient has its own
// lifecycle, state and error, and the message's state is derived from theirs as the app derives it.

/** Where the API is served; the deprecated paths the clients still call are served beside the others. */
export const smsGateApiPrefixes = ["/api/3rdparty/v1", "/3rdparty/v1"] as const;

/** Messages one list returns: 50 unless asked, at most 100 (as SMSGate's server). */
const defaultListLimit = 50;
const maxListLimit = 100;

/** What the door needs. */
export interface SmsGateApiServices {
  keys: Pick<KeysService, "authenticate" | "signIn" | "list" | "revoke" | "smsGateSigningKey" | "setSmsGateSigningKey">;
  messages: Pick<MessagesService, "sendGroup" | "group" | "groups" | "cancelGroup">;
  gateways: Pick<GatewayRegistry, "list" | "findByDeviceId" | "update" | "smsGateSettings" | "updateSmsGateSettings">;
  webhooks: Pick<WebhookDispatcher, "upsertSmsGate" | "listSmsGate" | "deleteSmsGate" | "resignSmsGate">;
  /** Keeps the accounts' webhook signing keys encrypted. */
  webhookSecrets: Pick<SecretBox, "seal" | "open">;
  inbound: Pick<InboundService, "list">;
  rateLimiter: Pick<RateLimiter, "hit">;
  authFailures: AuthFailureLimiter;
  metrics: Pick<Metrics, "rateLimited">;
  /** Requests a credential may make per window (the same limit as smsgw's own API). */
  requestsPerWindow: number;
  health: () => Promise<Health>;
  version: string;
  logger: Logger;
}

/** Who is calling: the principal, and its account's login when it signed in with one. */
interface ApiCaller extends Caller {
  login: string | undefined;
}

declare module "fastify" {
  interface FastifyRequest {
    smsGateCaller?: ApiCaller;
  }
}

/** A date in a query or a body: RFC 3339; 400 otherwise. */
function dateOf(value: unknown, field: string): Date | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") throw badRequest(`${field} must be a date (RFC 3339)`);
  const ms = Date.parse(value);
  if (Number.isNaN(ms) || !/^\d{4}-\d{2}-\d{2}T/.test(value)) throw badRequest(`${field} must be a date (RFC 3339)`);
  return new Date(ms);
}

/** A whole number in a query string; 400 otherwise. */
function wholeOf(value: unknown, field: string): number | undefined {
  if (value === undefined || value === "") return undefined;
  if (typeof value !== "string" || !/^-?\d{1,9}$/.test(value)) throw badRequest(`${field} must be a whole number`);
  return Number(value);
}

/** A boolean in a query string (`true`/`false`, `1`/`0`); 400 otherwise. */
function flagOf(value: unknown, field: string): boolean {
  if (value === undefined || value === "") return false;
  if (value === "true" || value === "1") return true;
  if (value === "false" || value === "0") return false;
  throw badRequest(`${field} must be true or false`);
}

function optional<T>(
  body: Record<string, unknown>,
  field: string,
  type: string,
  check: (value: unknown) => boolean,
): T | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (!check(value)) throw badRequest(`${field} must be ${type}`);
  return value as T;
}

const isInteger = (value: unknown) => typeof value === "number" && Number.isInteger(value);

/** A send request of SMSGate's API (`smsgateway.Message`), checked for shape. */
function groupInput(body: Record<string, unknown>, skipPhoneValidation: boolean): GroupSendInput {
  const id = optional<string>(body, "id", "a string", (value) => typeof value === "string");
  const numbers = body.phoneNumbers;
  if (!Array.isArray(numbers) || numbers.length === 0)
    throw badRequest("phoneNumbers must be a list of 1 to 100 numbers");
  if (!numbers.every((number) => typeof number === "string"))
    throw badRequest("phoneNumbers must be a list of strings");
  const text = body.textMessage;
  const data = body.dataMessage;
  const legacy = body.message;
  const given = [text, data, legacy].filter((value) => value !== undefined && value !== null).length;
  if (given === 0) throw badRequest("No message content provided: textMessage, dataMessage or message");
  if (given > 1) throw badRequest("Only one of textMessage, dataMessage and message may be given");
  let content: GroupSendInput["content"];
  if (text !== undefined && text !== null) {
    if (!isObject(text) || typeof text.text !== "string") throw badRequest("textMessage.text must be a string");
    content = { text: text.text };
  } else if (data !== undefined && data !== null) {
    if (!isObject(data) || typeof data.data !== "string") throw badRequest("dataMessage.data must be a string");
    if (!isInteger(data.port)) throw badRequest("dataMessage.port must be a whole number");
    content = { data: data.data, port: data.port as number };
  } else {
    if (typeof legacy !== "string") throw badRequest("message must be a string");
    content = { text: legacy };
  }
  const ttl = optional<number>(
    body,
    "ttl",
    "a whole number of seconds (at least 5)",
    (value) => isInteger(value) && (value as number) >= 5,
  );
  const validUntil = dateOf(body.validUntil, "validUntil");
  if (ttl !== undefined && validUntil !== undefined) throw badRequest("ttl and validUntil cannot both be given");
  const scheduleAt = dateOf(body.scheduleAt, "scheduleAt");
  const encrypted =
    optional<boolean>(body, "isEncrypted", "true or false", (value) => typeof value === "boolean") ?? false;
  const deliveryReport =
    optional<boolean>(body, "withDeliveryReport", "true or false", (value) => typeof value === "boolean") ?? true;
  const simNumber = optional<number>(body, "simNumber", "a whole number", isInteger);
  const priority = optional<number>(body, "priority", "a whole number", isInteger) ?? 0;
  const deviceId = optional<string>(body, "deviceId", "a string", (value) => typeof value === "string");
  const start = scheduleAt !== undefined && scheduleAt.getTime() > Date.now() ? scheduleAt.getTime() : Date.now();
  const expiresAt = validUntil ?? (ttl === undefined ? undefined : new Date(start + ttl * 1000));
  if (validUntil !== undefined && validUntil.getTime() <= Date.now()) throw badRequest("validUntil is in the past");
  return {
    id,
    recipients: numbers as string[],
    content,
    encrypted,
    simNumber,
    deliveryReport,
    priority,
    sendAt: scheduleAt,
    expiresAt,
    deviceId: deviceId === "" ? undefined : deviceId,
    skipPhoneValidation,
  };
}

const iso = (value: string | null) => (value === null ? undefined : new Date(value).toISOString());

/**
 * A logical message as SMSGate answers it (`smsgateway.MessageState`): its state, each recipient's
 * (with its error), when each state was first reached, and its content when `withContent`.
 */
function messageState(rows: GroupRecipientRow[], withContent: boolean) {
  const first = rows[0];
  if (first === undefined) throw new DomainError("not_found", "Message not found");
  const earliest = (values: (string | null)[]) => {
    const times = values.filter((value): value is string => value !== null).map((value) => Date.parse(value));
    return times.length === 0 ? undefined : new Date(Math.min(...times)).toISOString();
  };
  const states: Record<string, string> = {};
  const put = (state: string, at: string | undefined) => {
    if (at !== undefined) states[state] = at;
  };
  put("Pending", iso(first.created_at));
  put("Processed", earliest(rows.map((row) => row.processed_at)));
  put("Sent", earliest(rows.map((row) => row.sent_at)));
  put("Delivered", earliest(rows.map((row) => row.delivered_at)));
  put("Failed", earliest(rows.map((row) => row.failed_at)));
  put("Cancelled", earliest(rows.map((row) => row.cancelled_at)));
  const content =
    first.data_port === null
      ? { textMessage: { text: first.body } }
      : { dataMessage: { data: first.body, port: first.data_port } };
  return {
    id: first.ext_id ?? first.id,
    deviceId: rows.find((row) => row.device_id !== null)?.device_id ?? "",
    state: first.group_state,
    isHashed: false,
    isEncrypted: first.encrypted,
    recipients: rows.map((row) => ({
      phoneNumber: row.recipient,
      state: row.state,
      ...(row.state === "Failed" ? { error: row.error_message ?? "TTL expired" } : {}),
    })),
    states,
    ...(withContent ? content : {}),
  };
}

/** A phone as SMSGate lists it (`smsgateway.Device`). */
function deviceOf(gateway: GatewayRecord) {
  const seen = gateway.lastHeartbeatAt ?? gateway.updatedAt;
  return {
    id: gateway.deviceId,
    name: gateway.name,
    createdAt: gateway.createdAt.toISOString(),
    updatedAt: gateway.updatedAt.toISOString(),
    ...(gateway.active ? {} : { deletedAt: gateway.updatedAt.toISOString() }),
    lastSeen: seen.toISOString(),
    ...(Array.isArray(gateway.metadata.sim_cards) ? { simCards: gateway.metadata.sim_cards } : {}),
  };
}

/**
 * SMSGate's settings (`smsgateway.DeviceSettings`) as smsgw keeps them for its phones; the fields
 * smsgw does not relay are refused rather than silently dropped.
 */
function storedSettings(body: Record<string, unknown>): { stored: StoredSmsGateSettings; signingKey?: string } {
  const stored: StoredSmsGateSettings = {};
  let signingKey: string | undefined;
  const section = (name: string, fields: Record<string, (value: unknown) => void>) => {
    const value = body[name];
    if (value === undefined || value === null) return;
    if (!isObject(value)) throw badRequest(`${name} must be an object`);
    for (const [field, given] of Object.entries(value)) {
      if (given === null) continue;
      const put = fields[field];
      if (put === undefined) throw badRequest(`${name}.${field} is not a setting smsgw relays to its phones`);
      put(given);
    }
  };
  const number = (field: string, set: (value: number) => void) => (value: unknown) => {
    if (typeof value !== "number" || !Number.isInteger(value)) throw badRequest(`${field} must be a whole number`);
    set(value);
  };
  const text = (field: string, set: (value: string) => void) => (value: unknown) => {
    if (typeof value !== "string") throw badRequest(`${field} must be a string`);
    set(value);
  };
  section("messages", {
    send_interval_min: number("messages.send_interval_min", (v) => (stored.send_interval_min_seconds = v)),
    send_interval_max: number("messages.send_interval_max", (v) => (stored.send_interval_max_seconds = v)),
    limit_period: text("messages.limit_period", (v) => (stored.limit_period = v)),
    limit_value: number("messages.limit_value", (v) => (stored.limit_value = v)),
  });
  section("ping", { interval_seconds: number("ping.interval_seconds", (v) => (stored.ping_interval_seconds = v)) });
  section("gateway", {
    notification_channel: text("gateway.notification_channel", (v) => (stored.notification_channel = v)),
  });
  section("webhooks", { signing_key: text("webhooks.signing_key", (v) => (signingKey = v)) });
  for (const name of Object.keys(body)) {
    if (!["messages", "ping", "gateway", "webhooks"].includes(name))
      throw badRequest(`${name} is not a section of settings smsgw relays to its phones`);
  }
  return signingKey === undefined ? { stored } : { stored, signingKey };
}

const states = ["Pending", "Processed", "Sent", "Delivered", "Failed", "Cancelled"];

/**
 * SMSGate's third-party API on `app` (a scope of its own: SMSGate's error shape), under each of
 * `smsGateApiPrefixes`.
 */
export async function registerSmsGateApi(app: FastifyInstance, deps: SmsGateApiServices): Promise<void> {
  const peerOf = (request: FastifyRequest) => request.socket.remoteAddress ?? "unknown";

  const refuse = async (request: FastifyRequest): Promise<never> => {
    const decision = await deps.authFailures.failed(peerOf(request));
    if (!decision.allowed) {
      deps.metrics.rateLimited("authentication");
      throw new DomainError("rate_limited", "Too many failed authentication attempts", decision.resetSeconds);
    }
    throw unauthorized();
  };

  /**
   * Who calls: `Basic login:password` of an SMSGate account (a phone's, or one an operator made with
   * `smsgw keys create --kind account`), or `Bearer` an smsgw client or admin key. Each credential
   * has smsgw's rate limit.
   */
  const authenticate = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const peer = peerOf(request);
    const blocked = deps.authFailures.blockedFor(peer);
    if (blocked !== undefined) {
      deps.metrics.rateLimited("authentication");
      throw new DomainError("rate_limited", "Too many failed authentication attempts", blocked);
    }
    const given = credentials(request);
    let principal: Principal | undefined;
    let login: string | undefined;
    if (given?.scheme === "basic") {
      const pair = basicPair(given.value);
      principal = pair === undefined ? undefined : await deps.keys.signIn(pair.login, pair.password);
      login = pair?.login;
    } else if (given?.scheme === "bearer") {
      principal = await deps.keys.authenticate(given.value);
    }
    if (principal === undefined) return refuse(request);
    if (principal.kind !== "client") throw new SmsGateError(403, "Forbidden: this API needs a client credential");
    const decision = await deps.rateLimiter.hit(`key:${principal.keyId}`, deps.requestsPerWindow);
    void reply
      .header("ratelimit-limit", String(decision.limit))
      .header("ratelimit-remaining", String(decision.remaining))
      .header("ratelimit-reset", String(decision.resetSeconds));
    if (!decision.allowed) {
      deps.metrics.rateLimited("key");
      throw new DomainError("rate_limited", "Rate limit exceeded", decision.resetSeconds);
    }
    request.smsGateCaller = { keyId: principal.keyId, admin: principal.scope === "admin", login };
  };

  const callerOf = (request: FastifyRequest): ApiCaller => {
    const caller = request.smsGateCaller;
    if (caller === undefined) throw unauthorized();
    return caller;
  };

  const health = async (_request: FastifyRequest, reply: FastifyReply) => {
    const { checks } = await deps.health();
    const check = (name: string, state: "ok" | "down", required: boolean) => [
      name,
      { description: `whether ${name} answers`, status: state === "ok" ? "pass" : required ? "fail" : "warn" },
    ];
    // Sends are taken while PostgreSQL answers; Redis and Temporal down only delay them.
    const status =
      checks.database === "down" ? "fail" : checks.redis === "down" || checks.temporal === "down" ? "warn" : "pass";
    return reply.code(status === "fail" ? 503 : 200).send({
      status,
      version: deps.version,
      releaseId: 0,
      checks: Object.fromEntries([
        check("database", checks.database, true),
        check("redis", checks.redis, false),
        check("temporal", checks.temporal, false),
      ]),
    });
  };

  const send = async (request: FastifyRequest, reply: FastifyReply) => {
    const query = request.query as Record<string, unknown>;
    const skip = flagOf(query.skipPhoneValidation, "skipPhoneValidation");
    const activeWithin = wholeOf(query.deviceActiveWithin, "deviceActiveWithin");
    if (activeWithin !== undefined && activeWithin < 0) throw badRequest("deviceActiveWithin must be at least 0");
    const input = groupInput(jsonBody(request), skip);
    if (activeWithin !== undefined && activeWithin > 0) {
      // As SMSGate: a send is refused when no phone was seen within that many hours.
      const since = Date.now() - activeWithin * 3_600_000;
      const phones = await deps.gateways.list();
      const seen = phones.filter(
        (gateway) =>
          gateway.active &&
          (gateway.lastHeartbeatAt ?? gateway.updatedAt).getTime() >= since &&
          (input.deviceId === undefined || gateway.deviceId === input.deviceId),
      );
      if (seen.length === 0) throw badRequest("No device was active within the given period");
    }
    const rows = await deps.messages.sendGroup(callerOf(request), input);
    const state = messageState(rows, true);
    const prefix = request.url.startsWith("/api/") ? smsGateApiPrefixes[0] : smsGateApiPrefixes[1];
    return reply
      .code(202)
      .header("location", `${prefix}/messages/${encodeURIComponent(state.id)}`)
      .send(state);
  };

  const get = async (request: FastifyRequest) => {
    const { id } = request.params as { id: string };
    return messageState(await deps.messages.group(callerOf(request), id), true);
  };

  const cancel = async (request: FastifyRequest) => {
    const { id } = request.params as { id: string };
    return messageState(await deps.messages.cancelGroup(callerOf(request), id), true);
  };

  const list = async (request: FastifyRequest, reply: FastifyReply) => {
    const query = request.query as Record<string, unknown>;
    const limit = wholeOf(query.limit, "limit") ?? defaultListLimit;
    const offset = wholeOf(query.offset, "offset") ?? 0;
    if (limit < 1 || limit > maxListLimit) throw badRequest(`limit must be from 1 to ${maxListLimit}`);
    if (offset < 0) throw badRequest("offset must be at least 0");
    const state = query.state;
    if (state !== undefined && (typeof state !== "string" || !states.includes(state)))
      throw badRequest(`state must be one of ${states.join(", ")}`);
    const sort = query.sort ?? "-created_at";
    if (sort !== "created_at" && sort !== "-created_at") throw badRequest("sort must be created_at or -created_at");
    const deviceId = query.deviceId;
    if (deviceId !== undefined && typeof deviceId !== "string") throw badRequest("deviceId must be a string");
    const from = dateOf(query.from, "from");
    const to = dateOf(query.to, "to");
    const page = await deps.messages.groups(callerOf(request), {
      ...(from === undefined ? {} : { from }),
      ...(to === undefined ? {} : { to }),
      ...(typeof state === "string" ? { state } : {}),
      ...(deviceId === undefined || deviceId === "" ? {} : { deviceId }),
      ascending: sort === "created_at",
      limit,
      offset,
    });
    const groups: GroupRecipientRow[][] = [];
    for (const row of page.rows) {
      const last = groups[groups.length - 1];
      if (
        last?.[0] !== undefined &&
        last[0].client_key_id === row.client_key_id &&
        (last[0].ext_id ?? last[0].id) === (row.ext_id ?? row.id)
      )
        last.push(row);
      else groups.push([row]);
    }
    const withContent = flagOf(query.includeContent, "includeContent");
    return reply
      .header("x-total-count", String(page.total))
      .send(groups.map((rows) => messageState(rows, withContent)));
  };

  const devices = async () => (await deps.gateways.list()).filter((gateway) => gateway.active).map(deviceOf);

  /**
   * Removes a phone as SMSGate does: it is no longer sent messages and its keys stop working. Only
   * an admin key, or the account the phone signed up with, may remove it.
   */
  const removeDevice = async (request: FastifyRequest, reply: FastifyReply) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    const gateway = await deps.gateways.findByDeviceId(id);
    if (!caller.admin && (caller.login === undefined || gateway.metadata.account !== caller.login))
      throw new SmsGateError(403, "Forbidden: this device is not this account's");
    await deps.gateways.update(gateway.id, { active: false });
    for (const key of await deps.keys.list())
      if (key.gatewayId === gateway.id && key.revokedAt === null) await deps.keys.revoke(key.id);
    return reply.code(204).send();
  };

  /** The phones running SMSGate's app whose settings a caller manages: its account's (an admin's: all). */
  const phonesOf = async (caller: ApiCaller): Promise<string[]> => {
    const phones = await deps.gateways.smsGateSettings();
    if (caller.admin) return phones.map((phone) => phone.deviceId);
    if (caller.login === undefined) return [];
    const mine = new Set(
      (await deps.gateways.list())
        .filter((gateway) => gateway.metadata.account === caller.login)
        .map((gateway) => gateway.deviceId),
    );
    return phones.map((phone) => phone.deviceId).filter((deviceId) => mine.has(deviceId));
  };

  /** The account's settings, in SMSGate's shape: its phones' (the first one's) and its webhook signing key. */
  const settingsOf = async (caller: ApiCaller) => {
    const [deviceId] = await phonesOf(caller);
    const stored = deviceId === undefined ? {} : ((await deps.gateways.smsGateSettings(deviceId))[0]?.settings ?? {});
    return appSettings(stored, await deps.keys.smsGateSigningKey(caller.keyId, deps.webhookSecrets));
  };

  /**
   * Changes the account's settings: what is for the phones is relayed to each of its phones (each
   * is told at once), the signing key signs its webhooks from now on. PUT and PATCH both change only
   * what is given (smsgw keeps no defaults of its own for the rest).
   */
  const updateSettings = async (request: FastifyRequest) => {
    const caller = callerOf(request);
    const { stored, signingKey } = storedSettings(jsonBody(request));
    const phones = await phonesOf(caller);
    if (Object.keys(stored).length > 0) {
      if (phones.length === 0) throw badRequest("This account has no phone running SMSGate's app to relay settings to");
      for (const deviceId of phones) await deps.gateways.updateSmsGateSettings(stored, deviceId);
    }
    if (signingKey !== undefined) {
      await deps.keys.setSmsGateSigningKey(caller.keyId, signingKey, deps.webhookSecrets);
      await deps.webhooks.resignSmsGate(caller.keyId, signingKey);
    }
    return settingsOf(caller);
  };

  const registerWebhook = async (request: FastifyRequest, reply: FastifyReply) => {
    const caller = callerOf(request);
    const body = jsonBody(request);
    const id = optional<string>(
      body,
      "id",
      "a string of at most 36 characters",
      (value) => typeof value === "string" && value.length <= 36 && value !== "",
    );
    const url = body.url;
    if (typeof url !== "string" || url === "") throw badRequest("url must be given");
    const event = body.event;
    if (typeof event !== "string") throw badRequest("event must be given");
    const deviceId = optional<string>(body, "deviceId", "a string", (value) => typeof value === "string");
    const view = await deps.webhooks.upsertSmsGate({
      clientKeyId: caller.keyId,
      extId: id ?? randomToken(21),
      deviceId: deviceId === undefined || deviceId === "" ? null : deviceId,
      url,
      event,
      signingKey: await deps.keys.smsGateSigningKey(caller.keyId, deps.webhookSecrets),
    });
    return reply.code(201).send(view);
  };

  const inbox = async (request: FastifyRequest) => {
    const query = request.query as Record<string, unknown>;
    const limit = wholeOf(query.limit, "limit") ?? defaultListLimit;
    const offset = wholeOf(query.offset, "offset") ?? 0;
    if (limit < 1 || limit > maxListLimit) throw badRequest(`limit must be from 1 to ${maxListLimit}`);
    if (offset < 0 || offset % limit !== 0) throw badRequest("offset must be a multiple of limit");
    const deviceId = typeof query.deviceId === "string" ? query.deviceId : undefined;
    const page = await deps.inbound.list({
      since: dateOf(query.from, "from"),
      until: dateOf(query.to, "to"),
      deviceId,
      limit,
      page: offset / limit + 1,
    });
    // In the shape of the `sms:received` webhook's payload.
    return page.messages.map((message) => ({
      messageId: message.id,
      message: message.body,
      phoneNumber: message.sender,
      deviceId: message.deviceId ?? "",
      receivedAt: message.receivedAt.toISOString(),
    }));
  };

  const routes = async (api: FastifyInstance) => {
    smsGateScope(api, {
      withCode: true,
      // SMSGate answers 400 to every invalid request where smsgw's own API answers 422.
      domainStatus: (error) => (error.code === "validation" ? 400 : httpStatusOfDomain(error)),
    });

    api.get("/health", health);
    for (const probe of ["live", "ready", "startup"]) api.get(`/health/${probe}`, health);

    api.register(async (authenticated) => {
      authenticated.addHook("onRequest", authenticate);
      for (const path of ["/messages", "/message"]) {
        authenticated.post(path, send);
        authenticated.get(`${path}/:id`, get);
        authenticated.delete(`${path}/:id`, cancel);
      }
      authenticated.get("/messages", list);
      for (const path of ["/devices", "/device"]) authenticated.get(path, devices);
      authenticated.delete("/devices/:id", removeDevice);
      authenticated.get("/inbox", inbox);
      // smsgw stores every SMS its phones receive as it arrives: there is nothing to ask them for again.
      for (const path of ["/inbox/refresh", "/inbox/export", "/messages/inbox/export"])
        authenticated.post(path, async (_request, reply) => reply.code(202).send());
      authenticated.get("/webhooks", async (request) => deps.webhooks.listSmsGate(callerOf(request).keyId));
      authenticated.post("/webhooks", registerWebhook);
      authenticated.delete("/webhooks/:id", async (request, reply) => {
        await deps.webhooks.deleteSmsGate(callerOf(request).keyId, (request.params as { id: string }).id);
        return reply.code(204).send();
      });
      authenticated.get("/settings", async (request) => settingsOf(callerOf(request)));
      authenticated.put("/settings", updateSettings);
      authenticated.patch("/settings", updateSettings);
      // As SMSGate's server without a JWT secret: Basic and smsgw's keys are the credentials here.
      for (const [verb, path] of [
        ["POST", "/auth/token"],
        ["POST", "/auth/token/refresh"],
        ["DELETE", "/auth/token/:jti"],
      ] as const) {
        authenticated.route({
          method: verb,
          url: path,
          handler: async () => {
            throw new SmsGateError(501, "JWT tokens are not issued: sign in with Basic or an smsgw key");
          },
        });
      }
      authenticated.get("/logs", async () => {
        throw new SmsGateError(501, "A device's logs are not kept by the server");
      });
    });
  };

  for (const prefix of smsGateApiPrefixes) await app.register(routes, { prefix });
  // SMSGate's server answers its probes at the root too (`/health/live`, `/health/ready`, `/health/startup`).
  for (const probe of ["live", "ready", "startup"]) app.get(`/health/${probe}`, health);
}
