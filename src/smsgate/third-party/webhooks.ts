import type { FastifyInstance } from "fastify";
import { publishDeviceControl } from "../../modules/devices/index.js";
import { randomToken } from "../../shared/ids.js";
import { badRequest, jsonBody } from "../http.js";
import type { ApiCaller, ApiContext } from "./context.js";
import { optional } from "./fields.js";

// Webhooks (`handlers/webhooks/3rdparty.go`): the caller's endpoints for any of SMSGate's events,
// signed with its account's signing key. smsgw sends them itself; the account's phones are told
// (`WebhooksUpdated`), since which of their own events they post to smsgw follows what is wanted.

/** The routes of webhooks. */
export function webhookRoutes(api: FastifyInstance, context: ApiContext): void {
  const { deps } = context;

  const tellPhones = async (caller: ApiCaller) => {
    const phones = await context.phonesOf(caller);
    if (caller.accountKeyId === null || phones.length === 0) return;
    await publishDeviceControl(deps.redis, {
      type: "smsgate_event",
      gatewayIds: phones.map((phone) => phone.id),
      event: "WebhooksUpdated",
      data: null,
    }).catch((error: unknown) => deps.logger.warn({ err: error }, "telling phones of webhooks failed"));
  };

  api.get("/webhooks", async (request) => deps.webhooks.listSmsGate(context.caller(request, "webhooks:list").keyId));

  api.post("/webhooks", async (request, reply) => {
    const caller = context.caller(request, "webhooks:write");
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
    if (deviceId !== undefined && deviceId !== "") {
      await context.phoneOf(caller, deviceId).catch(() => {
        throw badRequest("device not found");
      });
    }
    const view = await deps.webhooks.upsertSmsGate({
      clientKeyId: caller.keyId,
      extId: id ?? randomToken(21),
      deviceId: deviceId === undefined || deviceId === "" ? null : deviceId,
      url,
      event,
      signingKey: await deps.keys.smsGateSigningKey(caller.keyId, deps.webhookSecrets),
    });
    await tellPhones(caller);
    return reply.code(201).send(view);
  });

  api.delete("/webhooks/:id", async (request, reply) => {
    const caller = context.caller(request, "webhooks:delete");
    await deps.webhooks.deleteSmsGate(caller.keyId, (request.params as { id: string }).id);
    await tellPhones(caller);
    return reply.code(204).send();
  });
}
