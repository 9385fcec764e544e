import type { FastifyInstance } from "fastify";
import type { TokenPair } from "../../modules/keys/index.js";
import { badRequest, credentials, jsonBody, SmsGateError } from "../http.js";
import type { ApiContext } from "./context.js";

// Signed tokens (`handlers/thirdparty/auth.go`, client-go's `GenerateToken`, `RefreshToken`,
// `RevokeToken`): a caller that may manage tokens issues a JWT for some of its scopes and a while
// (at most `SMSGATE_JWT_ACCESS_TTL_SECONDS`), with a refresh token good once for a new pair of the
// same scopes; either is revoked by the access token's id.

/** SMSGate's scopes (client-go's `domain_auth.go`), and `all:any`. */
export const tokenScopes = [
  "all:any",
  "devices:list",
  "devices:delete",
  "inbox:list",
  "inbox:refresh",
  "logs:read",
  "messages:cancel",
  "messages:send",
  "messages:read",
  "messages:list",
  "messages:export",
  "settings:read",
  "settings:write",
  "tokens:manage",
  "webhooks:list",
  "webhooks:write",
  "webhooks:delete",
];

/** A pair as SMSGate answers it (`smsgateway.TokenResponse`). */
const answer = (pair: TokenPair) => ({
  id: pair.access.id,
  token_type: "Bearer",
  access_token: pair.access.token,
  refresh_token: pair.refresh.token,
  expires_at: pair.access.expiresAt.toISOString(),
});

/**
 * `POST /auth/token/refresh`, on a scope without the API's authentication: the refresh token itself
 * is its credential (and that is its only use). A refused one counts as a failed sign-in.
 */
export function refreshRoute(api: FastifyInstance, context: ApiContext): void {
  api.post("/auth/token/refresh", async (request, reply) => {
    context.notBlocked(request);
    const given = credentials(request);
    const pair = given?.scheme === "bearer" ? await context.deps.accessTokens.refresh(given.value) : undefined;
    if (pair === undefined || pair === "replayed") return context.refuse(request);
    return reply.code(201).send(answer(pair));
  });
}

/** The routes of tokens (but the refresh). */
export function tokenRoutes(api: FastifyInstance, context: ApiContext): void {
  const { deps } = context;

  api.post("/auth/token", async (request, reply) => {
    const caller = context.caller(request, "tokens:manage");
    const body = jsonBody(request);
    const ttl = body.ttl ?? 0;
    if (typeof ttl !== "number" || !Number.isInteger(ttl) || ttl < 0)
      throw badRequest("ttl must be a whole number of seconds");
    const scopes = body.scopes;
    if (!Array.isArray(scopes) || scopes.length === 0 || !scopes.every((scope) => typeof scope === "string"))
      throw badRequest("scopes must list at least one scope");
    const unknown = scopes.find((scope) => !tokenScopes.includes(scope as string));
    if (unknown !== undefined) throw badRequest(`scopes: unknown scope ${String(unknown)}`);
    // A token gets no scope its issuer lacks.
    const beyond = scopes.find(
      (scope) => !caller.scopes.includes("all:any") && !caller.scopes.includes(scope as string),
    );
    if (beyond !== undefined) throw new SmsGateError(403, `scope required: ${String(beyond)}`);
    const pair = await deps.accessTokens.issue(caller.keyId, [...new Set(scopes as string[])], ttl);
    return reply.code(201).send(answer(pair));
  });

  api.delete("/auth/token/:jti", async (request, reply) => {
    const caller = context.caller(request, "tokens:manage");
    const { jti } = request.params as { jti: string };
    if (!/^[\w-]{1,64}$/.test(jti) || !(await deps.accessTokens.revoke(caller.keyId, jti)))
      throw new SmsGateError(404, "Token not found");
    return reply.code(204).send();
  });
}
