import { type DescService, getOption } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { AuthRequirement, auth } from "../../gen/smsgw/v1/options_pb.js";
import type { Config } from "../config.js";
import type { KeysService, Principal } from "../modules/keys/index.js";
import type { AuthFailureLimiter, RateDecision, RateLimiter } from "../modules/rate-limits/index.js";
import { DomainError } from "../shared/errors.js";
import type { Metrics } from "../shared/metrics.js";
import { inSpan, SpanKind } from "../tracing.js";
import { peerKey, principalKey, requestIdKey } from "./context.js";
import { toConnectError } from "./errors.js";
import { reflectionServices } from "./reflection.js";

/** Maps errors raised while a stream runs, as `errorInterceptor` does for calls. */
async function* mapStreamErrors<T>(messages: AsyncIterable<T>, map: (error: unknown) => Error): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (error) {
    throw map(error);
  }
}

/** Outermost: every error leaves as a ConnectError a client may see; unexpected ones are logged. */
export function errorInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    const map = (error: unknown) => {
      const requestId = req.contextValues.get(requestIdKey);
      return toConnectError(error, logger, requestId);
    };
    try {
      const res = await next(req);
      return res.stream ? { ...res, message: mapStreamErrors(res.message, map) } : res;
    } catch (error) {
      throw map(error);
    }
  };
}

function bearerToken(header: string | null): string | undefined {
  const match = header === null ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

function allows(requirement: AuthRequirement, principal: Principal): boolean {
  switch (requirement) {
    case AuthRequirement.GATEWAY:
      return principal.kind === "gateway";
    case AuthRequirement.CLIENT:
      return principal.kind === "client";
    case AuthRequirement.ADMIN:
      return principal.kind === "client" && principal.scope === "admin";
    case AuthRequirement.NONE:
      return true;
    case AuthRequirement.UNSPECIFIED:
      return false;
  }
}

const refusals: Record<AuthRequirement, string> = {
  [AuthRequirement.UNSPECIFIED]: "This operation is not available",
  [AuthRequirement.NONE]: "",
  [AuthRequirement.GATEWAY]: "This operation needs a gateway key (gw_live_…)",
  [AuthRequirement.CLIENT]: "This operation needs a client key (api_live_…)",
  [AuthRequirement.ADMIN]: "This operation needs an admin key",
};

function limited(decision: RateDecision): DomainError {
  return new DomainError("rate_limited", "Rate limit exceeded", decision.resetSeconds);
}

/** The address the call came from, as the door that took it saw it. */
function peerOf(req: { contextValues: { get<T>(key: { id: symbol; defaultValue: T }): T } }): string {
  return req.contextValues.get(peerKey) ?? "unknown";
}

/** What admitting a call needs. */
export interface AuthServices {
  keys: KeysService;
  rateLimiter: RateLimiter;
  authFailures: AuthFailureLimiter;
  config: Config;
  metrics: Metrics;
}

/**
 * Admits one call that `requirement` asks of, from `peer`, with its `Authorization` header: its
 * principal (none for calls that need no key) and the rate decision it was counted in; throws the
 * refusal (unauthenticated, permission_denied, rate_limited). Every door of the contract admits
 * through it: the Connect router's interceptor and the device stream's own gRPC door.
 */
export async function admit(
  deps: AuthServices,
  call: { requirement: AuthRequirement; peer: string; authorization: string | null },
): Promise<{ principal: Principal | undefined; decision: RateDecision }> {
  const { requestsPerWindow, anonymousRequestsPerWindow } = deps.config.rateLimit;
  const { requirement, peer } = call;
  const refuse = async (message: string): Promise<never> => {
    const decision = await deps.authFailures.failed(peer);
    if (!decision.allowed) {
      deps.metrics.rateLimited("authentication");
      throw limited(decision);
    }
    throw new DomainError("unauthenticated", message);
  };
  let principal: Principal | undefined;
  let decision: RateDecision;
  if (requirement === AuthRequirement.NONE) {
    decision = await deps.rateLimiter.hit(`peer:${peer}`, anonymousRequestsPerWindow);
  } else {
    const blockedSeconds = deps.authFailures.blockedFor(peer);
    if (blockedSeconds !== undefined) {
      deps.metrics.rateLimited("authentication");
      throw new DomainError("rate_limited", "Too many failed authentication attempts", blockedSeconds);
    }
    const token = bearerToken(call.authorization);
    if (token === undefined) return refuse("Missing API key");
    principal = await deps.keys.authenticate(token);
    if (principal === undefined) return refuse("Invalid API key");
    if (!allows(requirement, principal)) throw new DomainError("permission_denied", refusals[requirement]);
    decision = await deps.rateLimiter.hit(`key:${principal.keyId}`, requestsPerWindow);
  }
  if (!decision.allowed) {
    deps.metrics.rateLimited(requirement === AuthRequirement.NONE ? "address" : "key");
    throw limited(decision);
  }
  return { principal, decision };
}

/** The rate limit headers of an admitted call. */
export function rateLimitHeaders(decision: RateDecision): Record<string, string> {
  return {
    "ratelimit-limit": String(decision.limit),
    "ratelimit-remaining": String(decision.remaining),
    "ratelimit-reset": String(decision.resetSeconds),
  };
}

/**
 * Authenticates the `Authorization: Bearer` key, checks it against the RPC's `auth` option, and
 * counts the call against the key's rate limit (the client address's, for RPCs that need no key).
 * Failed authentication is limited per client address: beyond the limit the address hears 429.
 */
export function authInterceptor(deps: AuthServices): Interceptor {
  return (next) => async (req) => {
    // Server reflection describes the public contract: no key needed (the address is rate limited).
    const requirement = (reflectionServices as readonly DescService[]).includes(req.service)
      ? AuthRequirement.NONE
      : getOption(req.method, auth);
    const { principal, decision } = await admit(deps, {
      requirement,
      peer: peerOf(req),
      authorization: req.header.get("authorization"),
    });
    if (principal !== undefined) req.contextValues.set(principalKey, principal);
    const res = await next(req);
    for (const [name, value] of Object.entries(rateLimitHeaders(decision))) res.header.set(name, value);
    return res;
  };
}

/**
 * With tracing on: a server span per call (not per device stream), in which everything the call does
 * runs, a message's workflow start included.
 */
export function tracingInterceptor(): Interceptor {
  return (next) => async (req) => {
    if (req.stream) return next(req);
    return inSpan(`${req.service.typeName}/${req.method.name}`, SpanKind.SERVER, { "rpc.system": "connect" }, () =>
      next(req),
    );
  };
}
