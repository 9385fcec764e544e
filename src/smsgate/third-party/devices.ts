import type { FastifyInstance } from "fastify";
import type { GatewayRecord } from "../../modules/gateways/index.js";
import { SmsGateError } from "../http.js";
import type { ApiContext } from "./context.js";

// Devices (`handlers/devices/3rdparty.go`) and logs (`handlers/logs/3rdparty.go`): an account lists
// its own phones and removes one; another account's phone is as unknown as a missing one.

/** A phone as SMSGate lists it (`smsgateway.Device`). */
function deviceOf(gateway: GatewayRecord) {
  const seen = gateway.lastHeartbeatAt ?? gateway.updatedAt;
  return {
    id: gateway.deviceId,
    name: gateway.name,
    createdAt: gateway.createdAt.toISOString(),
    updatedAt: gateway.updatedAt.toISOString(),
    lastSeen: seen.toISOString(),
    ...(Array.isArray(gateway.metadata.sim_cards) ? { simCards: gateway.metadata.sim_cards } : {}),
  };
}

/** The routes of devices and logs. */
export function deviceRoutes(api: FastifyInstance, context: ApiContext): void {
  const { deps } = context;

  for (const path of ["/devices", "/device"]) {
    api.get(path, async (request) => (await context.phonesOf(context.caller(request, "devices:list"))).map(deviceOf));
  }

  // Removes a phone as SMSGate does: it is no longer sent messages, and its keys stop working.
  api.delete("/devices/:id", async (request, reply) => {
    const caller = context.caller(request, "devices:delete");
    const phone = await context.phoneOf(caller, (request.params as { id: string }).id);
    await deps.gateways.update(phone.id, { active: false });
    for (const key of await deps.keys.list())
      if (key.gatewayId === phone.id && key.revokedAt === null) await deps.keys.revoke(key.id);
    return reply.code(204).send();
  });

  // As SMSGate's server: a phone's logs stay on the phone (its Local server mode serves them).
  api.get("/logs", async (request) => {
    context.caller(request, "logs:read");
    throw new SmsGateError(501, "For privacy reasons, device's logs are not accessible through Cloud server");
  });
}
