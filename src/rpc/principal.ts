import type { HandlerContext } from "@connectrpc/connect";
import type { Principal } from "../modules/keys/index.js";
import { DomainError } from "../shared/errors.js";
import { principalKey } from "./context.js";

type GatewayPrincipal = Extract<Principal, { kind: "gateway" }>;
type ClientPrincipal = Extract<Principal, { kind: "client" }>;

/** The calling gateway; the auth interceptor has already checked the key's kind. */
export function callingGateway(ctx: HandlerContext): GatewayPrincipal {
  const principal = ctx.values.get(principalKey);
  if (principal?.kind !== "gateway") throw new DomainError("permission_denied", "This operation needs a gateway key");
  return principal;
}

/** The calling client application; the auth interceptor has already checked the key's kind. */
export function callingClient(ctx: HandlerContext): ClientPrincipal {
  const principal = ctx.values.get(principalKey);
  if (principal?.kind !== "client") throw new DomainError("permission_denied", "This operation needs a client key");
  return principal;
}
