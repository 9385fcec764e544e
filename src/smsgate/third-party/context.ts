import type { FastifyReply, FastifyRequest } from "fastify";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Health } from "../../http/health.js";
import type { EventsService } from "../../modules/events/index.js";
import type { GatewayRecord, GatewayRegistry } from "../../modules/gateways/index.js";
import type { InboundService } from "../../modules/inbound/index.js";
import type { AccessTokens, KeysService, Principal } from "../../modules/keys/index.js";
import type { Caller, MessagesService } from "../../modules/messages/index.js";
import type { AuthFailureLimiter, RateLimiter } from "../../modules/rate-limits/index.js";
import type { WebhookDispatcher } from "../../modules/webhooks/index.js";
import { DomainError } from "../../shared/errors.js";
import type { Metrics } from "../../shared/metrics.js";
import type { SecretBox } from "../../shared/secret-box.js";
import { basicPair, credentials, peerOf, SmsGateError, unauthorized } from "../http.js";

/** What the third-party door needs. */
export interface SmsGateApiServices {
  keys: Pick<
    KeysService,
    "authenticate" | "signIn" | "list" | "revoke" | "smsGateSigningKey" | "setSmsGateSigningKey" | "clientPrincipal"
  >;
  accessTokens: Pick<AccessTokens, "issue" | "verify" | "refresh" | "revoke">;
  messages: Pick<MessagesService, "sendGroup" | "group" | "groups" | "cancelGroup">;
  gateways: Pick<
    GatewayRegistry,
    "list" | "listOfAccount" | "findByDeviceId" | "update" | "smsGateSettings" | "updateSmsGateSettings"
  >;
  webhooks: Pick<WebhookDispatcher, "upsertSmsGate" | "listSmsGate" | "deleteSmsGate" | "resignSmsGate">;
  events: Pick<EventsService, "emitMany">;
  /** Keeps the accounts' webhook signing keys encrypted. */
  webhookSecrets: Pick<SecretBox, "seal" | "open">;
  inbound: Pick<InboundService, "list">;
  rateLimiter: Pick<RateLimiter, "hit">;
  authFailures: AuthFailureLimiter;
  metrics: Pick<Metrics, "rateLimited">;
  redis: Redis;
  /** Requests a credential may make per window (the same limit as smsgw's own API). */
  requestsPerWindow: number;
  health: () => Promise<Health>;
  version: string;
  logger: Logger;
}

/** SMSGate's scope that every other scope is part of (a Basic login's, and an smsgw key's). */
export const allScopes = "all:any";

/**
 * Who is calling: its key; its account when it is an SMSGate account (a client key with a login:
 * it sees its own phones and what they received only), and the scopes it may act in.
 */
export interface ApiCaller extends Caller {
  login: string | undefined;
  /** The account's key id when the caller is an SMSGate account (or a signed token of one); else null. */
  accountKeyId: number | null;
  scopes: readonly string[];
  /** The signed token the call was made with, when it was. */
  token: string | undefined;
}

declare module "fastify" {
  interface FastifyRequest {
    smsGateCaller?: ApiCaller;
  }
}

/** A signed token (a JWT: three base64url parts) rather than an smsgw key. */
const looksSigned = (value: string) => /^[\w-]+\.[\w-]+\.[\w-]+$/.test(value);

/** What every resource of the third-party door shares. */
export interface ApiContext {
  deps: SmsGateApiServices;
  /** Refuses the call (429) while its address has used its failed sign-ins. */
  notBlocked(request: FastifyRequest): void;
  /** Counts a failed sign-in from the caller's address and refuses it (401, or 429 past the budget). */
  refuse(request: FastifyRequest): Promise<never>;
  /** Authenticates the call (Basic, an smsgw key, or a signed token), within its rate limit. */
  authenticate(request: FastifyRequest, reply: FastifyReply): Promise<void>;
  /** The caller, when it may act in `scope` (403 otherwise; `exact`: `all:any` is not enough). */
  caller(request: FastifyRequest, scope: string, exact?: boolean): ApiCaller;
  /** The phones the caller sees: its account's (an smsgw key's: every one), active ones. */
  phonesOf(caller: ApiCaller): Promise<GatewayRecord[]>;
  /** One of the caller's phones by its device id; 404 for any other (another account's is unknown). */
  phoneOf(caller: ApiCaller, deviceId: string): Promise<GatewayRecord>;
}

/** The context of the third-party door over its services. */
export function contextOfClients(deps: SmsGateApiServices): ApiContext {
  const refuse = async (request: FastifyRequest): Promise<never> => {
    const decision = await deps.authFailures.failed(peerOf(request));
    if (!decision.allowed) {
      deps.metrics.rateLimited("authentication");
      throw new DomainError("rate_limited", "Too many failed authentication attempts", decision.resetSeconds);
    }
    throw unauthorized();
  };

  /** The principal of a credential, its login and its scopes; undefined when it is not one. */
  const identify = async (
    request: FastifyRequest,
  ): Promise<{ principal: Principal; login: string | undefined; scopes: string[]; token?: string } | undefined> => {
    const given = credentials(request);
    if (given?.scheme === "basic") {
      const pair = basicPair(given.value);
      const principal = pair === undefined ? undefined : await deps.keys.signIn(pair.login, pair.password);
      return principal === undefined ? undefined : { principal, login: pair?.login, scopes: [allScopes] };
    }
    if (given?.scheme !== "bearer") return undefined;
    if (!looksSigned(given.value)) {
      const principal = await deps.keys.authenticate(given.value);
      return principal === undefined ? undefined : { principal, login: undefined, scopes: [allScopes] };
    }
    // A refresh token is no access token (`verify` refuses it): it is good for the refresh route only.
    const claims = await deps.accessTokens.verify(given.value);
    const key = claims === undefined ? undefined : await deps.keys.clientPrincipal(claims.keyId);
    if (claims === undefined || key === undefined) return undefined;
    return { principal: key.principal, login: key.login ?? undefined, scopes: claims.scopes, token: given.value };
  };

  const phonesOf = async (caller: ApiCaller): Promise<GatewayRecord[]> =>
    caller.accountKeyId === null
      ? (await deps.gateways.list()).filter((gateway) => gateway.active)
      : deps.gateways.listOfAccount(caller.accountKeyId);

  const notBlocked = (request: FastifyRequest) => {
    const blocked = deps.authFailures.blockedFor(peerOf(request));
    if (blocked !== undefined) {
      deps.metrics.rateLimited("authentication");
      throw new DomainError("rate_limited", "Too many failed authentication attempts", blocked);
    }
  };

  return {
    deps,
    notBlocked,
    refuse,
    async authenticate(request, reply) {
      notBlocked(request);
      const found = await identify(request);
      if (found === undefined) return refuse(request);
      const { principal } = found;
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
      request.smsGateCaller = {
        keyId: principal.keyId,
        admin: principal.scope === "admin",
        login: found.login,
        accountKeyId: found.login === undefined ? null : principal.keyId,
        scopes: found.scopes,
        token: found.token,
      };
    },
    caller(request, scope, exact = false) {
      const caller = request.smsGateCaller;
      if (caller === undefined) throw unauthorized();
      if (!caller.scopes.includes(scope) && (exact || !caller.scopes.includes(allScopes)))
        throw new SmsGateError(403, `scope required: ${scope}`);
      return caller;
    },
    phonesOf,
    async phoneOf(caller, deviceId) {
      const phone = (await phonesOf(caller)).find((gateway) => gateway.deviceId === deviceId);
      if (phone === undefined) throw new SmsGateError(404, "Device not found");
      return phone;
    },
  };
}
