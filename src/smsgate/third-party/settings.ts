import type { FastifyInstance, FastifyRequest } from "fastify";
import { appSettings, type StoredSmsGateSettings } from "../../modules/gateways/index.js";
import { badRequest, isObject, jsonBody } from "../http.js";
import type { ApiCaller, ApiContext } from "./context.js";

// Settings (`handlers/settings/3rdparty.go`): what the account's phones are told to do, relayed to
// each of them at once. `PUT` replaces them (what is left out takes the app's own value again),
// `PATCH` changes only what is given. `webhooks.signing_key` may be set (it signs the account's
// webhooks from then on) but is never shown, as SMSGate's server never shows it (`rulesPublic`).

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

/** The routes of settings. */
export function settingsRoutes(api: FastifyInstance, context: ApiContext): void {
  const { deps } = context;

  /** The phones running SMSGate's app whose settings the caller manages, with their settings. */
  const appPhones = async (caller: ApiCaller) => {
    const mine = new Set((await context.phonesOf(caller)).map((phone) => phone.deviceId));
    return (await deps.gateways.smsGateSettings()).filter((phone) => mine.has(phone.deviceId));
  };

  /** The account's settings, in SMSGate's shape (its first phone's), without the signing key. */
  const shown = (phones: { settings: StoredSmsGateSettings }[]) => {
    const { webhooks: _hidden, ...rest } = appSettings(phones[0]?.settings ?? {}, "");
    return rest;
  };

  const update = (replace: boolean) => async (request: FastifyRequest) => {
    const caller = context.caller(request, "settings:write");
    const { stored, signingKey } = storedSettings(jsonBody(request));
    let phones = await appPhones(caller);
    if (phones.length === 0 && Object.keys(stored).length > 0)
      throw badRequest("This account has no phone running SMSGate's app to relay settings to");
    if (Object.keys(stored).length > 0 || replace) {
      const changed = [];
      for (const phone of phones)
        changed.push(...(await deps.gateways.updateSmsGateSettings(stored, phone.deviceId, { replace })));
      phones = changed;
    }
    if (signingKey !== undefined) {
      await deps.keys.setSmsGateSigningKey(caller.keyId, signingKey, deps.webhookSecrets);
      await deps.webhooks.resignSmsGate(caller.keyId, signingKey);
    }
    return shown(phones);
  };

  api.get("/settings", async (request) => shown(await appPhones(context.caller(request, "settings:read"))));
  api.put("/settings", update(true));
  api.patch("/settings", update(false));
}
