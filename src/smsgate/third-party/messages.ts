import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { GroupRecipientRow, GroupSendInput } from "../../modules/messages/index.js";
import { DomainError } from "../../shared/errors.js";
import { badRequest, isObject, jsonBody } from "../http.js";
import { listableStates } from "../states.js";
import type { ApiContext } from "./context.js";
import { dateOf, flagOf, optional, pageOf, wholeOf } from "./fields.js";

// Messages (`handlers/messages/3rdparty.go`): send, read, list and cancel, under `/messages` and the
// deprecated `/message` the npm client still calls. A logical message of several recipients is stored
// as one smsgw message per recipient under the client's id: each recipient has its own lifecycle,
// state and error, and the message's state is derived from theirs as the app derives it.

/** Messages one list returns: 50 unless asked, at most 100 (as SMSGate's server). */
const defaultListLimit = 50;
const maxListLimit = 100;
/** The longest recipient SMSGate takes (client-go's `max=128`), and device id (`max=21`). */
const maxNumberLength = 128;
const maxDeviceIdLength = 21;

const isInteger = (value: unknown) => typeof value === "number" && Number.isInteger(value);

/** A send request of SMSGate's API (`smsgateway.Message`), checked for shape. */
export function groupInput(body: Record<string, unknown>, skipPhoneValidation: boolean): GroupSendInput {
  const id = optional<string>(body, "id", "a string", (value) => typeof value === "string");
  const numbers = body.phoneNumbers;
  if (!Array.isArray(numbers) || numbers.length === 0)
    throw badRequest("phoneNumbers must be a list of 1 to 100 numbers");
  if (!numbers.every((number) => typeof number === "string"))
    throw badRequest("phoneNumbers must be a list of strings");
  numbers.forEach((number: string, i) => {
    if (number.length > maxNumberLength) throw badRequest(`phoneNumbers[${i}] is longer than ${maxNumberLength}`);
  });
  const text = body.textMessage;
  const data = body.dataMessage;
  // client-go v1.6 sends `"message": ""` beside nothing else; an empty legacy field is no content.
  const legacy = body.message === "" ? undefined : body.message;
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
  if (scheduleAt !== undefined && scheduleAt.getTime() <= Date.now())
    throw badRequest("scheduleAt must be in the future");
  const encrypted =
    optional<boolean>(body, "isEncrypted", "true or false", (value) => typeof value === "boolean") ?? false;
  const deliveryReport =
    optional<boolean>(body, "withDeliveryReport", "true or false", (value) => typeof value === "boolean") ?? true;
  const simNumber = optional<number>(body, "simNumber", "a whole number", isInteger);
  const priority = optional<number>(body, "priority", "a whole number", isInteger) ?? 0;
  const deviceId = optional<string>(
    body,
    "deviceId",
    `a device id of at most ${maxDeviceIdLength} characters`,
    (value) => typeof value === "string" && value.length <= maxDeviceIdLength,
  );
  const start = scheduleAt?.getTime() ?? Date.now();
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
export function smsGateState(rows: GroupRecipientRow[], withContent: boolean) {
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

/** The routes of messages, under `/messages` and `/message`. */
export function messageRoutes(api: FastifyInstance, context: ApiContext, prefix: string): void {
  const { deps } = context;

  const send = async (request: FastifyRequest, reply: FastifyReply) => {
    const caller = context.caller(request, "messages:send");
    const query = request.query as Record<string, unknown>;
    const skip = flagOf(query.skipPhoneValidation, "skipPhoneValidation");
    const activeWithin = wholeOf(query.deviceActiveWithin, "deviceActiveWithin");
    if (activeWithin !== undefined && activeWithin < 0) throw badRequest("deviceActiveWithin must be at least 0");
    const input = groupInput(jsonBody(request), skip);
    // As SMSGate: the device named must be one of the caller's (another account's is not found).
    if (input.deviceId !== undefined && caller.accountKeyId !== null) {
      await context.phoneOf(caller, input.deviceId).catch(() => {
        throw badRequest("device not found");
      });
    }
    if (activeWithin !== undefined && activeWithin > 0) {
      // As SMSGate: a send is refused when none of the caller's phones was seen within that many hours.
      const since = Date.now() - activeWithin * 3_600_000;
      const seen = (await context.phonesOf(caller)).filter(
        (gateway) =>
          (gateway.lastHeartbeatAt ?? gateway.updatedAt).getTime() >= since &&
          (input.deviceId === undefined || gateway.deviceId === input.deviceId),
      );
      if (seen.length === 0) throw badRequest("No device was active within the given period");
    }
    const rows = await deps.messages.sendGroup(caller, input);
    const state = smsGateState(rows, true);
    return reply
      .code(202)
      .header("location", `${prefix}/messages/${encodeURIComponent(state.id)}`)
      .send(state);
  };

  const get = async (request: FastifyRequest) => {
    const { id } = request.params as { id: string };
    return smsGateState(await deps.messages.group(context.caller(request, "messages:read"), id), true);
  };

  const cancel = async (request: FastifyRequest) => {
    const { id } = request.params as { id: string };
    return smsGateState(await deps.messages.cancelGroup(context.caller(request, "messages:cancel"), id), true);
  };

  const list = async (request: FastifyRequest, reply: FastifyReply) => {
    const caller = context.caller(request, "messages:list");
    const query = request.query as Record<string, unknown>;
    const { limit, offset } = pageOf(query, defaultListLimit, maxListLimit);
    const state = query.state;
    if (state !== undefined && (typeof state !== "string" || !(listableStates as readonly string[]).includes(state)))
      throw badRequest(`state must be one of ${listableStates.join(", ")}`);
    const sort = query.sort ?? "-created_at";
    if (sort !== "created_at" && sort !== "-created_at") throw badRequest("sort must be created_at or -created_at");
    const deviceId = query.deviceId;
    if (deviceId !== undefined && typeof deviceId !== "string") throw badRequest("deviceId must be a string");
    const from = dateOf(query.from, "from");
    const to = dateOf(query.to, "to");
    if (from !== undefined && to !== undefined && from > to) throw badRequest("from must not be after to");
    const page = await deps.messages.groups(caller, {
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
      .send(groups.map((rows) => smsGateState(rows, withContent)));
  };

  for (const path of ["/messages", "/message"]) {
    api.post(path, send);
    api.get(path, list);
    api.get(`${path}/:id`, get);
    api.delete(`${path}/:id`, cancel);
  }
}
