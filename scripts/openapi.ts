// Writes gen/openapi.json, the OpenAPI 3.1 document of the REST door, from the contract itself: the
// proto files (built by buf with their comments), their `google.api.http` rules and smsgw's own
// options (success status, who may call). Run by `npm run generate`, after `buf generate`; CI fails
// when it is stale. It describes the JSON exactly as src/rpc/rest-json.ts writes it: proto field
// names (snake_case) in field order, every field present, `null` for an unset field with presence,
// RFC 3339 timestamps, and errors as {"error": "..."}.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import {
  createFileRegistry,
  type DescEnum,
  type DescField,
  type DescMessage,
  type DescMethod,
  fromBinary,
  getOption,
  ScalarType,
} from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { getComments } from "@bufbuild/protoplugin";
import { http } from "../gen/google/api/annotations_pb.js";
import { AuthRequirement, auth, http_success_status } from "../gen/smsgw/v1/options_pb.js";
// The REST door's own rule for which fields are written as `null` when unset.
import { hasPresence } from "../src/rpc/rest-json.js";

type Json = Record<string, unknown>;

const image = execFileSync("node_modules/.bin/buf", ["build", "--as-file-descriptor-set", "-o", "-"], {
  maxBuffer: 64 * 1024 * 1024,
});
const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, image));

/** A comment as documentation: the lines joined into paragraphs. */
function doc(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const paragraphs = text
    .trim()
    .split(/\n\s*\n/)
    .map((paragraph) =>
      paragraph
        .split("\n")
        .map((line) => line.trim())
        .join(" "),
    );
  return paragraphs.join("\n\n") || undefined;
}

const described = <T extends Json>(schema: T, text: string | undefined): T =>
  text === undefined ? schema : { ...schema, description: text };

const schemas: Record<string, Json> = {};

/** The JSON Schema of a scalar as proto3 JSON writes it (64-bit integers are strings). */
function scalar(type: ScalarType): Json {
  switch (type) {
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BYTES:
      return { type: "string", contentEncoding: "base64" };
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return { type: "number" };
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return { type: "string", pattern: "^-?[0-9]+$" };
    default:
      return {
        type: "integer",
        format: type === ScalarType.UINT32 || type === ScalarType.FIXED32 ? "uint32" : "int32",
      };
  }
}

/** Well-known types keep their own JSON form. */
function wellKnown(message: DescMessage): Json | undefined {
  switch (message.typeName) {
    case "google.protobuf.Timestamp":
      return { type: "string", format: "date-time" };
    case "google.protobuf.Duration":
      return { type: "string", pattern: "^-?[0-9]+(\\.[0-9]+)?s$" };
    case "google.protobuf.Struct":
      return { type: "object", additionalProperties: true };
    case "google.protobuf.Value":
      return {};
    case "google.protobuf.ListValue":
      return { type: "array" };
    default:
      return undefined;
  }
}

/** A reference to a message's schema, which is added to the components the first time. */
function messageRef(message: DescMessage): Json {
  const own = wellKnown(message);
  if (own !== undefined) return own;
  const name = message.typeName.replace(/^smsgw\.v1\./, "");
  if (schemas[name] === undefined) {
    schemas[name] = {};
    schemas[name] = messageSchema(message);
  }
  return { $ref: `#/components/schemas/${name}` };
}

function valueSchema(field: DescField): Json {
  switch (field.fieldKind) {
    case "scalar":
      return scalar(field.scalar);
    case "enum":
      return enumSchema(field.enum);
    case "message":
      return messageRef(field.message);
    case "list":
      return { type: "array", items: elementSchema(field.listKind, field) };
    case "map":
      return { type: "object", additionalProperties: elementSchema(field.mapKind, field) };
  }
}

const enumSchema = (desc: DescEnum): Json => ({ type: "string", enum: desc.values.map((value) => value.name) });

/** The schema of a list's items or a map's values. */
function elementSchema(
  kind: "scalar" | "enum" | "message",
  field: { scalar?: ScalarType; enum?: DescEnum; message?: DescMessage },
): Json {
  if (kind === "scalar" && field.scalar !== undefined) return scalar(field.scalar);
  if (kind === "enum" && field.enum !== undefined) return enumSchema(field.enum);
  if (field.message !== undefined) return messageRef(field.message);
  return {};
}

function nullable(schema: Json): Json {
  if (typeof schema.$ref === "string") return { anyOf: [schema, { type: "null" }] };
  if (typeof schema.type === "string") return { ...schema, type: [schema.type, "null"] };
  return { anyOf: [schema, { type: "null" }] };
}

/** A message as the REST door answers it: every field present, in field order. */
function messageSchema(message: DescMessage): Json {
  const properties: Record<string, Json> = {};
  for (const field of message.fields) {
    const value = valueSchema(field);
    properties[field.name] = described(hasPresence(field) ? nullable(value) : value, doc(getComments(field).leading));
  }
  return described(
    {
      type: "object",
      properties,
      required: message.fields.map((field) => field.name),
      additionalProperties: false,
    },
    doc(getComments(message).leading),
  );
}

/** A request body: the same fields, all optional, camelCase accepted too (proto3 JSON). */
function requestSchema(message: DescMessage, without: string[]): Json {
  const properties: Record<string, Json> = {};
  for (const field of message.fields) {
    if (without.includes(field.name)) continue;
    properties[field.name] = described(valueSchema(field), doc(getComments(field).leading));
  }
  return described({ type: "object", properties }, doc(getComments(message).leading));
}

const errorResponse = (description: string) => ({
  description,
  content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
});

const keys: Record<AuthRequirement, string> = {
  [AuthRequirement.UNSPECIFIED]: "nobody",
  [AuthRequirement.NONE]: "anyone, without a key",
  [AuthRequirement.GATEWAY]: "a gateway key (`gw_live_…`)",
  [AuthRequirement.CLIENT]: "a client key (`api_live_…`, scope client or admin)",
  [AuthRequirement.ADMIN]: "an admin key (`api_live_…`, scope admin)",
};

function operation(method: DescMethod, path: string, body: string): Json {
  const requirement = getOption(method, auth);
  const success = getOption(method, http_success_status) || 200;
  const pathParams = [...path.matchAll(/\{([a-z_][a-z0-9_]*)\}/g)].map((match) => match[1] as string);
  const parameters: Json[] = pathParams.map((name) => {
    const field = method.input.fields.find((f) => f.name === name);
    return {
      name,
      in: "path",
      required: true,
      schema: field === undefined ? { type: "string" } : valueSchema(field),
      ...(field === undefined ? {} : { description: doc(getComments(field).leading) }),
    };
  });
  if (body === "") {
    for (const field of method.input.fields) {
      if (pathParams.includes(field.name)) continue;
      parameters.push({
        name: field.name,
        in: "query",
        required: false,
        schema: valueSchema(field),
        description: doc(getComments(field).leading),
      });
    }
  }
  if (method.name === "SendSms" || method.name === "SendSmsBatch") {
    parameters.push({
      name: "Idempotency-Key",
      in: "header",
      required: false,
      schema: { type: "string", maxLength: 255 },
      description: "The same key returns the same message instead of sending a second SMS (also `idempotency_key`).",
    });
  }
  const responses: Record<string, Json> = {
    [String(success)]: {
      description: "Success.",
      content: { "application/json": { schema: messageRef(method.output) } },
    },
    "400": errorResponse("A required field is missing, or the request is not JSON."),
    "422": errorResponse("A field is present but not acceptable."),
    "429": errorResponse("Over the rate limit; `Retry-After` says when to try again."),
    "503": errorResponse(
      "A dependency did not answer, or too many messages wait; `Retry-After` says when to try again.",
    ),
  };
  if (requirement !== AuthRequirement.NONE) {
    responses["401"] = errorResponse("The key is missing, unknown or revoked.");
    responses["403"] = errorResponse(`The key may not call this: it needs ${keys[requirement]}.`);
  }
  if (pathParams.length > 0 || method.name.startsWith("Get")) responses["404"] = errorResponse("Not found.");
  const comments = doc(getComments(method).leading);
  return {
    operationId: method.name,
    tags: [method.parent.name],
    summary: comments?.split(/(?<=\.)\s/)[0],
    description:
      `${comments ?? ""}\n\nWho may call: ${keys[requirement]}. RPC: \`${method.parent.typeName}/${method.name}\`.`.trim(),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(body === ""
      ? {}
      : {
          requestBody: {
            required: true,
            content: { "application/json": { schema: requestSchema(method.input, pathParams) } },
          },
        }),
    responses,
    security: requirement === AuthRequirement.NONE ? [] : [{ bearerAuth: [] }],
  };
}

const paths: Record<string, Record<string, Json>> = {};
const tags: Json[] = [];
for (const file of registry.files) {
  if (!file.name.startsWith("smsgw/")) continue;
  for (const service of file.services) {
    let used = false;
    for (const method of service.methods) {
      const rule = getOption(method, http);
      const pattern = rule.pattern;
      if (pattern.case === undefined || pattern.case === "custom") continue;
      used = true;
      const path = pattern.value;
      paths[path] ??= {};
      (paths[path] as Record<string, Json>)[pattern.case] = operation(method, path, rule.body);
    }
    if (used) tags.push({ name: service.name, description: doc(getComments(service).leading) });
  }
}

schemas.Error = {
  type: "object",
  properties: { error: { type: "string", description: "What went wrong, for a person to read." } },
  required: ["error"],
  additionalProperties: false,
  description: 'Every error: `{"error": "..."}`.',
};

const sortedPaths = Object.fromEntries(Object.entries(paths).sort(([a], [b]) => a.localeCompare(b)));
const document = {
  openapi: "3.1.0",
  info: {
    title: "smsgw REST API",
    version: "1",
    description:
      "The REST door of smsgw, generated from its Protobuf contract (proto/smsgw/v1). The same operations " +
      "are served as gRPC and Connect on the same port. JSON keys are snake_case; every field of an answer " +
      "is present, unset optional ones as null; times are RFC 3339.",
    license: { name: "MIT", identifier: "MIT" },
  },
  servers: [{ url: "http://localhost:3000", description: "npm start" }],
  tags,
  paths: sortedPaths,
  components: {
    securitySchemes: {
      bearerAuth: {
        type: "http",
        scheme: "bearer",
        description:
          "`Authorization: Bearer <key>`: `api_live_…` keys for client applications (scope client or admin), " +
          "`gw_live_…` keys for gateway devices.",
      },
    },
    schemas: Object.fromEntries(Object.entries(schemas).sort(([a], [b]) => a.localeCompare(b))),
  },
};

writeFileSync("gen/openapi.json", `${JSON.stringify(document, null, 2)}\n`);
