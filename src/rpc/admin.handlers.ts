import type { JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { AccountService, AdminService } from "../../gen/smsgw/v1/admin_pb.js";
import type {
  FleetGatewayView,
  FleetWatch,
  GatewayRegistry,
  StoredSmsGateSettings,
} from "../modules/gateways/index.js";
import type { KeyRecord, KeyScope, KeysService } from "../modules/keys/index.js";
import { type MessagesService, statsOf } from "../modules/messages/index.js";
import type { OneTimePasswords } from "../modules/otp/index.js";
import { invalid } from "../shared/errors.js";
import { callingClient } from "./principal.js";
import { optionalTimestamp } from "./timestamps.js";

function fleetGateway(gateway: FleetGatewayView) {
  return { ...gateway, lastHeartbeatAt: optionalTimestamp(gateway.lastHeartbeatAt) };
}

const keyScopes: readonly KeyScope[] = ["client", "admin", "gateway", "registration"];

/** OTP figures as the contract shows them. */
const otpFigures = (figures: { sentToday: number; verifiedToday: number; verificationRate: number }) => ({
  sent: figures.sentToday,
  verified: figures.verifiedToday,
  verificationRate: figures.verificationRate,
});

const snakeCase = (name: string) => name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
const camelCase = (name: string) => name.replace(/_([a-z])/g, (_all, letter: string) => letter.toUpperCase());

/** A phone's SMSGate settings as the contract has them. */
function phoneSettings(phone: { deviceId: string; settings: StoredSmsGateSettings }) {
  return {
    gatewayId: phone.deviceId,
    settings: Object.fromEntries(Object.entries(phone.settings).map(([field, value]) => [camelCase(field), value])),
  };
}

/** AdminService on the shared services. */
export function adminHandlers(deps: {
  gateways: GatewayRegistry;
  keys: KeysService;
  fleet: FleetWatch;
  messages: Pick<MessagesService, "figures" | "overview" | "inFlight">;
  otp: OneTimePasswords;
  config: { timeZone: string; messages: { gatewaySendsPerMinute: number } };
}): ServiceImpl<typeof AdminService> {
  /** A key as listed, with its gateway's device id. */
  const apiKey = async (key: KeyRecord, deviceIds?: Map<number, string>) => ({
    id: key.id,
    scope: key.scope,
    name: key.name,
    hint: key.hint,
    gatewayId:
      key.gatewayId === null
        ? undefined
        : (deviceIds?.get(key.gatewayId) ?? (await deps.gateways.find(key.gatewayId))?.deviceId),
    createdAt: timestampFromDate(key.createdAt),
    lastUsedAt: optionalTimestamp(key.lastUsedAt),
    revokedAt: optionalTimestamp(key.revokedAt),
    login: key.login ?? undefined,
  });
  return {
    async *watchGateways(_req, ctx) {
      for await (const fleet of deps.fleet.watch(ctx.signal)) {
        yield { gateways: fleet.map(fleetGateway), at: timestampFromDate(new Date()) };
      }
    },

    async updateGateway(req) {
      const gateway = await deps.gateways.update(req.id, { priority: req.priority, active: req.active });
      const [view] = await deps.fleet.describe([gateway]);
      if (view === undefined) throw new Error("an updated gateway is missing from the fleet");
      return { gateway: fleetGateway(view) };
    },

    async getOverview() {
      const { timeZone } = deps.config;
      // Each figure an index range or a small table: none reads every message.
      const [overview, inFlight, gateways, today, week] = await Promise.all([
        deps.messages.overview(timeZone),
        deps.messages.inFlight(),
        deps.gateways.list(),
        deps.otp.stats(timeZone),
        deps.otp.stats(timeZone, 7),
      ]);
      // Every minute of the hour, those without messages too.
      const counted = new Map(overview.minutes.map((row) => [new Date(row.minute).getTime(), row]));
      const thisMinute = Math.floor(Date.now() / 60_000) * 60_000;
      const minutes = Array.from({ length: 60 }, (_, i) => {
        const at = thisMinute - (59 - i) * 60_000;
        const row = counted.get(at);
        return {
          minute: timestampFromDate(new Date(at)),
          delivered: row?.delivered ?? 0,
          failed: row?.failed ?? 0,
          expired: row?.expired ?? 0,
          pending: row?.pending ?? 0,
        };
      });
      const ended = overview.delivered_today + overview.failed_today;
      return {
        minutes,
        deliveryRate: ended === 0 ? 0 : Math.round((overview.delivered_today / ended) * 10_000) / 100,
        backlog: inFlight.queued,
        inFlight: inFlight.dispatched,
        gatewaysOnline: gateways.filter((gateway) => gateway.status === "online").length,
        gatewaysTotal: gateways.length,
        otpToday: otpFigures(today),
        otpLast7Days: otpFigures(week),
        at: timestampFromDate(new Date()),
      };
    },

    async listKeys() {
      const [keys, gateways] = await Promise.all([deps.keys.list(), deps.gateways.list()]);
      const deviceIds = new Map(gateways.map((gateway) => [gateway.id, gateway.deviceId]));
      return { keys: await Promise.all(keys.map((key) => apiKey(key, deviceIds))) };
    },

    async createKey(req) {
      const name = req.name.trim();
      if (name === "" || name.length > 100) throw invalid("name must be 1 to 100 characters");
      const scope = req.scope as KeyScope;
      if (!keyScopes.includes(scope)) throw invalid(`scope must be one of ${keyScopes.join(", ")}`);
      let gatewayId: number | undefined;
      if (scope === "gateway") {
        if (!req.gatewayId) throw invalid("gateway_id is required for a gateway key");
        gatewayId = (await deps.gateways.findByDeviceId(req.gatewayId)).id;
      } else if (req.gatewayId) {
        throw invalid("gateway_id is only for gateway keys");
      }
      const created = await deps.keys.create(gatewayId === undefined ? { scope, name } : { scope, name, gatewayId });
      return { apiKey: created.key, key: await apiKey(created.record) };
    },

    async revokeKey(req) {
      return { key: await apiKey(await deps.keys.revoke(req.id)) };
    },

    async listSmsGateSettings(req) {
      return { phones: (await deps.gateways.smsGateSettings(req.gatewayId)).map(phoneSettings) };
    },

    async updateSmsGateSettings(req) {
      const given = req.settings ?? {};
      const patch: StoredSmsGateSettings = {};
      for (const [field, value] of Object.entries(given)) {
        if (value === undefined || field === "$typeName" || field === "$unknown") continue;
        (patch as Record<string, unknown>)[snakeCase(field)] = value;
      }
      return { phones: (await deps.gateways.updateSmsGateSettings(patch, req.gatewayId)).map(phoneSettings) };
    },

    async listGateways() {
      const gateways = await deps.gateways.list();
      return {
        gateways: gateways.map((gateway) => ({
          id: gateway.id,
          deviceId: gateway.deviceId,
          name: gateway.name,
          status: gateway.status,
          lastHeartbeatAt: optionalTimestamp(gateway.lastHeartbeatAt),
          messagesSentToday: gateway.messagesSentToday,
          messagesReceivedToday: gateway.messagesReceivedToday,
          totalMessagesSent: gateway.totalMessagesSent,
          totalMessagesReceived: gateway.totalMessagesReceived,
          active: gateway.active,
          priority: gateway.priority,
          metadata: gateway.metadata as JsonObject,
          createdAt: timestampFromDate(gateway.createdAt),
        })),
      };
    },

    async getStats() {
      const [gateways, messages] = await Promise.all([
        deps.gateways.figures(),
        deps.messages.figures(deps.config.timeZone),
      ]);
      const stats = statsOf(gateways, messages);
      return {
        gateways: stats.gateways,
        messages: stats.messages,
        otp: await deps.otp.stats(deps.config.timeZone),
        timestamp: timestampFromDate(new Date()),
      };
    },

    async toggleGateway(req) {
      const gateway = await deps.gateways.toggle(req.id);
      return { success: true, gateway };
    },
  };
}

/** AccountService: what the calling key is. */
export function accountHandlers(): ServiceImpl<typeof AccountService> {
  return {
    async getCaller(_req, ctx) {
      const client = callingClient(ctx);
      return { keyId: client.keyId, scope: client.scope, name: client.name };
    },
  };
}
