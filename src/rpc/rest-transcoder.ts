import { type DescField, type DescMethodUnary, fromJson, getOption, type JsonObject } from "@bufbuild/protobuf";
import { ConnectError, createHandlerContext, type Interceptor, type ServiceImplSpec } from "@connectrpc/connect";
import { invokeUnaryImplementation } from "@connectrpc/connect/protocol";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { http } from "../../gen/google/api/annotations_pb.js";
import type { HttpRule } from "../../gen/google/api/http_pb.js";
import { http_success_status } from "../../gen/smsgw/v1/options_pb.js";
import { unstorableTextMessage } from "../shared/text.js";
import { callContext } from "./context.js";
import { httpStatusOf, restErrorBody } from "./errors.js";
import { toRestJson } from "./rest-json.js";

/** The HTTP verb and path template of a `google.api.http` rule, when it has one. */
function verbAndPath(rule: HttpRule): { verb: "GET" | "POST" | "PUT" | "PATCH" | "DELETE"; path: string } | undefined {
  switch (rule.pattern.case) {
    case "get":
    case "post":
    case "put":
    case "patch":
    case "delete":
      return { verb: rule.pattern.case.toUpperCase() as "GET", path: rule.pattern.value };
    default:
      return undefined;
  }
}

/** `/a/{b}` in `google.api.http` is `/a/:b` in fastify. */
function fastifyPath(template: string): string {
  return template.replace(/\{([a-z_][a-z0-9_]*)\}/g, ":$1");
}

function fieldNamed(method: DescMethodUnary, name: string): DescField | undefined {
  return method.input.fields.find((field) => field.name === name || field.jsonName === name);
}

/** A query-string value as the JSON `fromJson` expects for the field. */
function queryValue(field: DescField, value: string | string[]): unknown {
  const values = Array.isArray(value) ? value : [value];
  const one = (text: string): unknown => {
    if (field.fieldKind === "scalar" && field.scalar === 8 /* BOOL */) return text === "true" || text === "1";
    return text;
  };
  return field.fieldKind === "list" ? values.map(one) : one(values[values.length - 1] ?? "");
}

class BadRequest extends Error {}

function isPlainObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Builds the RPC's request JSON from the query, the body and the path, later ones winning. */
function requestJson(method: DescMethodUnary, rule: HttpRule, request: FastifyRequest): JsonObject {
  const json: JsonObject = {};
  for (const [name, value] of Object.entries((request.query ?? {}) as Record<string, string | string[]>)) {
    const field = fieldNamed(method, name);
    if (field !== undefined) json[field.name] = queryValue(field, value) as JsonObject[string];
  }
  if (rule.body === "*" && request.body !== undefined) {
    if (!isPlainObject(request.body)) throw new BadRequest("Request body must be a JSON object");
    Object.assign(json, request.body);
  } else if (rule.body !== "" && request.body !== undefined) {
    json[rule.body] = request.body as JsonObject[string];
  }
  Object.assign(json, request.params as Record<string, string>);
  return json;
}

/** Headers the handlers see: the caller's key, its idempotency key and where it called. */
function forwardedHeaders(request: FastifyRequest): Headers {
  const headers = new Headers();
  const authorization = request.headers.authorization;
  if (authorization !== undefined) headers.set("authorization", authorization);
  const idempotencyKey = request.headers["idempotency-key"];
  if (typeof idempotencyKey === "string") headers.set("idempotency-key", idempotencyKey);
  headers.set("x-forwarded-host", request.host);
  headers.set("x-forwarded-proto", request.protocol);
  return headers;
}

function copyHeaders(from: Headers, reply: FastifyReply): void {
  for (const name of ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "retry-after"]) {
    const value = from.get(name);
    if (value !== null) reply.header(name, value);
  }
}

/**
 * The status and client-facing message for a request that did not decode: the field, not the
 * schema's internals. A string that is not valid Unicode is text that cannot be stored (422), as the
 * boundary check says of a NUL.
 */
function decodeError(error: unknown): { status: number; message: string } {
  if (error instanceof BadRequest) return { status: 400, message: error.message };
  const text = String((error as Error).message);
  const field = /field [\w.]+\.(\w+) from JSON/.exec(text)?.[1];
  if (field === undefined) return { status: 400, message: "Invalid request parameters" };
  if (text.endsWith("invalid UTF8")) return { status: 422, message: unstorableTextMessage(field) };
  return { status: 400, message: `${field} has the wrong type` };
}

function parseBody(contentType: string | undefined, body: string): unknown {
  const trimmed = body.trim();
  if (trimmed === "") return undefined;
  // curl -d sends JSON with a form content type unless told otherwise: JSON-looking bodies are JSON.
  const looksLikeJson = trimmed.startsWith("{") || trimmed.startsWith("[");
  if (!looksLikeJson && contentType?.startsWith("application/x-www-form-urlencoded")) {
    return Object.fromEntries(new URLSearchParams(body));
  }
  try {
    return JSON.parse(body);
  } catch {
    throw Object.assign(new Error("Invalid JSON in request body"), { statusCode: 400 });
  }
}

/**
 * Registers one REST route per RPC with a `google.api.http` rule, each calling the RPC's handler in
 * process (no serializing in between) through the same interceptors as every other door, and
 * answering with the documented JSON and status. No REST route is written by hand.
 */
export function registerRestRoutes(
  app: FastifyInstance,
  specs: readonly ServiceImplSpec[],
  interceptors: Interceptor[],
  bodyLimitBytes: number,
): void {
  // Bodies are JSON whatever the content type says (clients often send none, or curl's form type);
  // form-encoded bodies are read as flat string fields, as Rails did.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string", bodyLimit: bodyLimitBytes }, (request, body, done) => {
    try {
      done(null, parseBody(request.headers["content-type"], body as string));
    } catch (error) {
      done(error as Error, undefined);
    }
  });

  for (const { service, methods } of specs) {
    for (const described of service.methods) {
      if (described.methodKind !== "unary") continue;
      // The check above makes this a unary method; DescMethod is not a discriminated union.
      const method = described as DescMethodUnary;
      const rule = getOption(method, http);
      const route = verbAndPath(rule);
      if (route === undefined) continue;
      const successStatus = getOption(method, http_success_status) || 200;
      const implementation = methods[method.localName];
      if (implementation?.kind !== "unary") throw new Error(`${method.parent.typeName}.${method.name} has no handler`);
      app.route({
        method: route.verb,
        url: fastifyPath(route.path),
        handler: async (request, reply) => {
          let input: ReturnType<typeof fromJson<typeof method.input>>;
          try {
            input = fromJson(method.input, requestJson(method, rule, request), { ignoreUnknownFields: true });
          } catch (error) {
            const refused = decodeError(error);
            return reply.code(refused.status).send({ error: refused.message });
          }
          try {
            const context = createHandlerContext({
              service,
              method,
              protocolName: "rest",
              requestMethod: request.method,
              url: `${request.protocol}://${request.host}${request.url}`,
              requestHeader: forwardedHeaders(request),
              contextValues: callContext(request),
            });
            const output = await invokeUnaryImplementation(implementation, context, input, interceptors);
            copyHeaders(context.responseHeader, reply);
            return reply.code(successStatus).send(toRestJson(method.output, output));
          } catch (error) {
            const connectError = ConnectError.from(error);
            const status = httpStatusOf(connectError);
            copyHeaders(connectError.metadata, reply);
            return reply.code(status).send(restErrorBody(connectError, status));
          }
        },
      });
    }
  }
}
