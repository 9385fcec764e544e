import type { FastifyInstance, FastifyRequest } from "fastify";
import { httpStatusOfDomain } from "../rpc/errors.js";
import { DomainError } from "../shared/errors.js";
import { outageMessage, outageOf } from "../shared/outage.js";
import { unstorableJsonPath, unstorableTextMessage } from "../shared/text.js";

// What SMSGate's two APIs (the app's mobile API and the third-party API) share in smsgw: their error
// shape, how a credential and a body's fields are read, and how a scope of either is set up.

/** An error in SMSGate's shape: `{"message": ...}` with its HTTP status. */
export class SmsGateError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const unauthorized = () => new SmsGateError(401, "Unauthorized");
export const badRequest = (message: string) => new SmsGateError(400, message);

export const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** The request's JSON object body; 400 otherwise. */
export function jsonBody(request: FastifyRequest): Record<string, unknown> {
  if (!isObject(request.body)) throw badRequest("The body must be a JSON object");
  return request.body;
}

/** The address a request came from (what failed authentications are counted by). */
export const peerOf = (request: FastifyRequest): string => request.socket.remoteAddress ?? "unknown";

/** An optional string field: undefined when absent or null, refused when of another type or too long. */
export function optionalString(body: Record<string, unknown>, field: string, max = 255): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw badRequest(`${field} must be a string`);
  if (value.length > max) throw badRequest(`${field} is too long (at most ${max} characters)`);
  return value;
}

/** The scheme (lower case) and value of the `Authorization` header, if it has both. */
export function credentials(request: FastifyRequest): { scheme: string; value: string } | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const space = header.indexOf(" ");
  if (space <= 0) return undefined;
  return { scheme: header.slice(0, space).toLowerCase(), value: header.slice(space + 1).trim() };
}

/** The login and password of a `Basic` credential's value, if it holds both. */
export function basicPair(value: string): { login: string; password: string } | undefined {
  const decoded = Buffer.from(value, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  return { login: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Sets up a scope of one of SMSGate's APIs: every error answers `{"message"}` (plus `extra` for
 * the third-party API's `code`) with SMSGate's statuses and never with internal detail; unknown
 * paths are 404; JSON bodies are parsed keeping their exact text (`rawBody`: a phone's webhook is
 * signed over it), and text PostgreSQL cannot store is refused before anything reads it.
 */
export function smsGateScope(
  scope: FastifyInstance,
  options: { withCode: boolean; domainStatus?: (error: DomainError) => number },
): void {
  const body = (status: number, message: string) => (options.withCode ? { message, code: status } : { message });
  scope.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
    if (error instanceof SmsGateError) return reply.code(error.status).send(body(error.status, error.message));
    if (error instanceof DomainError) {
      const status = options.domainStatus?.(error) ?? httpStatusOfDomain(error);
      if (error.retryAfterSeconds !== undefined) void reply.header("retry-after", String(error.retryAfterSeconds));
      return reply.code(status).send(body(status, error.message));
    }
    const outage = outageOf(error);
    if (outage !== undefined) {
      request.log.warn({ err: error, dependency: outage }, "a dependency did not answer");
      return reply
        .code(503)
        .header("retry-after", "5")
        .send(body(503, outageMessage(outage)));
    }
    const status = error.statusCode;
    if (status !== undefined && status >= 400 && status < 500)
      return reply.code(status).send(body(status, error.message));
    request.log.error({ err: error }, "unexpected error");
    return reply.code(500).send(body(500, "Internal server error"));
  });
  scope.setNotFoundHandler((_request, reply) => reply.code(404).send(body(404, "Not found")));
  scope.removeContentTypeParser("application/json");
  scope.addContentTypeParser("application/json", { parseAs: "string" }, (request, text, done) => {
    (request as FastifyRequest & { rawBody?: string }).rawBody = String(text);
    try {
      done(null, text === "" ? undefined : JSON.parse(String(text)));
    } catch {
      done(badRequest("The body is not valid JSON"), undefined);
    }
  });
  scope.addHook("preHandler", async (request) => {
    const path = unstorableJsonPath(request.body, "");
    if (path !== undefined) throw badRequest(unstorableTextMessage(path === "" ? "body" : path));
    // Path and query values reach the database as well.
    for (const values of [request.params, request.query]) {
      const inUrl = unstorableJsonPath(values, "");
      if (inUrl !== undefined) throw badRequest(unstorableTextMessage(inUrl));
    }
  });
}
