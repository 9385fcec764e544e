import type { FastifyRequest } from "fastify";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type {
  ConnectedGateway,
  DeviceConnection,
  DeviceFrame,
  DeviceHub,
  LiveDevices,
} from "../../modules/devices/index.js";
import type { EventsService } from "../../modules/events/index.js";
import type { GatewayRegistry } from "../../modules/gateways/index.js";
import type { InboundService } from "../../modules/inbound/index.js";
import type { KeysService } from "../../modules/keys/index.js";
import type { MessagesService } from "../../modules/messages/index.js";
import type { AuthFailureLimiter } from "../../modules/rate-limits/index.js";
import type { WebhookDispatcher } from "../../modules/webhooks/index.js";
import { basicPair, credentials, peerOf, unauthorized } from "../http.js";
import type { ReplayGuard } from "../replay-guard.js";
import type { SignInCodes } from "../sign-in-codes.js";

/** What the mobile door needs. */
export interface SmsGateMobileServices {
  keys: Pick<
    KeysService,
    "authenticate" | "registration" | "account" | "createAccount" | "changePassword" | "gatewayKeyLive"
  >;
  gateways: Pick<GatewayRegistry, "register" | "updateMetadata" | "idOf" | "find">;
  inbound: Pick<InboundService, "receive">;
  events: Pick<EventsService, "emit">;
  messages: Pick<MessagesService, "fetch" | "cancelling">;
  webhooks: Pick<WebhookDispatcher, "listSmsGate">;
  hub: Pick<DeviceHub, "connect" | "alive" | "disconnect" | "report">;
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

/** What every resource of the mobile door shares: the services, and how a phone is known. */
export interface MobileContext {
  deps: SmsGateMobileServices;
  codes: SignInCodes;
  replays: ReplayGuard;
  /** Counts a failed authentication from the caller's address and refuses it. */
  refuse(request: FastifyRequest): Promise<never>;
  /** The account `Basic login:password` names, or undefined. */
  basicAccount(value: string): Promise<{ keyId: number; login: string } | undefined>;
  /** The calling phone (its device token is its gateway key); 401 otherwise. */
  device(request: FastifyRequest): Promise<ConnectedGateway>;
  /** Marks the phone present, and the connection its calls are heard on. */
  present(gateway: ConnectedGateway): Promise<DeviceConnection>;
  /** Records what a phone's call says as the device frame it is. */
  report(gateway: ConnectedGateway, frame: DeviceFrame): Promise<void>;
  /** Records what a phone posted, signed rather than with its token, as the device frame it is. */
  reportSigned(gatewayId: number, frame: DeviceFrame): Promise<void>;
}

/** The context of the mobile door over its services. */
export function contextOfPhones(deps: SmsGateMobileServices, codes: SignInCodes, replays: ReplayGuard): MobileContext {
  const refuse = async (request: FastifyRequest): Promise<never> => {
    await deps.authFailures.failed(peerOf(request));
    throw unauthorized();
  };

  /**
   * Every call of a phone says it is there: while its events stream is open it is connected through
   * it; otherwise its calls hold a connection of channel `poll`, which ends as any connection does
   * when the phone stops calling (and its unacknowledged messages then go to other phones).
   */
  const present = async (gateway: ConnectedGateway): Promise<DeviceConnection> => {
    const open = deps.connections.openOf(gateway.gatewayId);
    if (open !== undefined && open.gateway.keyId === gateway.keyId) {
      await deps.hub.alive(open);
      return open;
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
    return connection;
  };

  return {
    deps,
    codes,
    replays,
    refuse,
    async basicAccount(value) {
      const pair = basicPair(value);
      return pair === undefined ? undefined : deps.keys.account(pair.login, pair.password);
    },
    async device(request) {
      if (deps.authFailures.blockedFor(peerOf(request)) !== undefined) throw unauthorized();
      const given = credentials(request);
      if (given?.scheme !== "bearer") return refuse(request);
      const principal = await deps.keys.authenticate(given.value);
      if (principal?.kind !== "gateway") return refuse(request);
      return { gatewayId: principal.gatewayId, deviceId: principal.deviceId, keyId: principal.keyId };
    },
    present,
    async report(gateway, frame) {
      await deps.hub.report(gateway.gatewayId, frame, await present(gateway));
    },
    async reportSigned(gatewayId, frame) {
      await deps.hub.report(gatewayId, frame, deps.connections.openOf(gatewayId));
    },
  };
}
