import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { publishDeviceControl } from "../../modules/devices/index.js";
import type { GatewayRecord } from "../../modules/gateways/index.js";
import { badRequest, isObject, jsonBody } from "../http.js";
import type { ApiCaller, ApiContext } from "./context.js";
import { dateOf, pageOf } from "./fields.js";

// The inbox (`handlers/inbox/3rdparty.go`, client-go's `ListInboxMessages` and `RefreshInbox`):
// smsgw keeps every SMS its phones receive as it arrives, so it lists them itself; an export
// (refresh) delivers those of a window again to the account's `sms:received` webhooks, and asks
// its phones (`MessagesExportRequested`) to post any smsgw never got (each is stored once).

const defaultLimit = 50;
/** SMSGate's most per page; smsgw answers at most 100 of them per call (the total says how many). */
const maxLimit = 500;
/** Messages one export delivers again at most. */
const maxExported = 10_000;
const exportPage = 100;
const messageTypes = ["SMS", "MMS"];
const webhookDeliveries = ["Disabled", "Individual", "Batch"];

/** An export's request (`InboxRefreshRequest`, or the deprecated `MessagesExportRequest`). */
interface ExportRequest {
  deviceId: string | undefined;
  since: Date;
  until: Date;
  types: string[];
  webhookDelivery: string;
}

function exportRequest(body: Record<string, unknown>): ExportRequest {
  const since = dateOf(body.since, "since");
  const until = dateOf(body.until, "until");
  if (since === undefined || until === undefined) throw badRequest("since and until are required");
  if (since > until) throw badRequest("since must not be after until");
  const deviceId = body.deviceId;
  if (deviceId !== undefined && deviceId !== null && (typeof deviceId !== "string" || deviceId.length > 21))
    throw badRequest("deviceId must be a device id");
  const types = body.messageTypes ?? ["SMS"];
  if (!Array.isArray(types) || types.length === 0 || !types.every((type) => messageTypes.includes(type as string)))
    throw badRequest(`messageTypes must list some of ${messageTypes.join(", ")}`);
  const trigger = body.triggerWebhooks;
  if (trigger !== undefined && typeof trigger !== "boolean") throw badRequest("triggerWebhooks must be true or false");
  const delivery = body.webhookDelivery ?? (trigger === false ? "Disabled" : "Individual");
  if (typeof delivery !== "string" || !webhookDeliveries.includes(delivery))
    throw badRequest(`webhookDelivery must be one of ${webhookDeliveries.join(", ")}`);
  return {
    deviceId: typeof deviceId === "string" && deviceId !== "" ? deviceId : undefined,
    since,
    until,
    types: types as string[],
    webhookDelivery: delivery,
  };
}

/** The routes of the inbox. */
export function inboxRoutes(api: FastifyInstance, context: ApiContext): void {
  const { deps } = context;

  api.get("/inbox", async (request: FastifyRequest, reply: FastifyReply) => {
    const caller = context.caller(request, "inbox:list");
    const query = request.query as Record<string, unknown>;
    const { limit, offset } = pageOf(query, defaultLimit, maxLimit);
    const type = query.type;
    if (type !== undefined && !["SMS", "DATA_SMS", "MMS", "MMS_DOWNLOADED"].includes(type as string))
      throw badRequest("type must be one of SMS, DATA_SMS, MMS, MMS_DOWNLOADED");
    const deviceId = typeof query.deviceId === "string" && query.deviceId !== "" ? query.deviceId : undefined;
    if (deviceId !== undefined) await context.phoneOf(caller, deviceId);
    // smsgw's inbox holds the SMS its phones received (MMS are relayed to webhooks only).
    if (type !== undefined && type !== "SMS") return reply.header("x-total-count", "0").send([]);
    const page = await deps.inbound.list({
      since: dateOf(query.from, "from"),
      until: dateOf(query.to, "to"),
      deviceId,
      ...(caller.accountKeyId === null ? {} : { accountKeyId: caller.accountKeyId }),
      limit,
      offset,
    });
    // In client-go's `IncomingMessage` shape.
    return reply.header("x-total-count", String(page.total)).send(
      page.messages.map((message) => ({
        id: message.id,
        type: "SMS",
        sender: message.sender,
        contentPreview: message.body,
        createdAt: message.receivedAt.toISOString(),
      })),
    );
  });

  const refresh = (scope: string, deprecated: boolean) => async (request: FastifyRequest, reply: FastifyReply) => {
    const caller = context.caller(request, scope);
    const body = request.body === undefined ? {} : jsonBody(request);
    const wanted = exportRequest(isObject(body) ? body : {});
    if (deprecated && wanted.deviceId === undefined) throw badRequest("deviceId is required");
    const phones =
      wanted.deviceId === undefined ? await context.phonesOf(caller) : [await context.phoneOf(caller, wanted.deviceId)];
    if (wanted.webhookDelivery !== "Disabled" && wanted.types.includes("SMS")) await deliverAgain(caller, wanted);
    await askPhones(phones, wanted);
    if (deprecated) void reply.header("deprecation", "true");
    return reply.code(202).send();
  };

  /** Delivers the stored SMS of the window again, to the caller's `sms:received` webhooks only. */
  const deliverAgain = async (caller: ApiCaller, wanted: ExportRequest) => {
    for (let offset = 0; offset < maxExported; offset += exportPage) {
      const page = await deps.inbound.list({
        since: new Date(wanted.since.getTime() - 1),
        until: new Date(wanted.until.getTime() + 1),
        deviceId: wanted.deviceId,
        ...(caller.accountKeyId === null ? {} : { accountKeyId: caller.accountKeyId }),
        limit: exportPage,
        offset,
      });
      await deps.events.emitMany(
        page.messages.map((message) => ({
          event: "sms_received" as const,
          export_of: message.id,
          only_key_id: caller.keyId,
          from: message.sender,
          message: message.body,
          received_at: message.receivedAt.toISOString(),
          gateway_id: message.deviceId,
        })),
      );
      if (page.messages.length < exportPage) return;
    }
  };

  /** Asks the phones to post what they received in the window (as SMSGate's server words it). */
  const askPhones = async (phones: GatewayRecord[], wanted: ExportRequest) => {
    if (phones.length === 0) return;
    await publishDeviceControl(deps.redis, {
      type: "smsgate_event",
      gatewayIds: phones.map((phone) => phone.id),
      event: "MessagesExportRequested",
      data: {
        since: wanted.since.toISOString().replace(/\.\d{3}Z$/, "Z"),
        until: wanted.until.toISOString().replace(/\.\d{3}Z$/, "Z"),
        messageTypes: wanted.types.join(","),
        webhookDelivery: wanted.webhookDelivery,
        triggerWebhooks: String(wanted.webhookDelivery !== "Disabled"),
      },
    });
  };

  api.post("/inbox/refresh", refresh("inbox:refresh", false));
  // client-ts and client-go call `/inbox/export`; SMSGate's server serves `/messages/inbox/export`.
  api.post("/inbox/export", refresh("messages:export", true));
  api.post("/messages/inbox/export", refresh("messages:export", true));
}
