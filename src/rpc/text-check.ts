import type { DescField, DescMessage } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import { invalid } from "../shared/errors.js";
import { isStorableText, unstorableJsonPath, unstorableTextMessage } from "../shared/text.js";

type Fields = Record<string, unknown>;

/** The value of `field` in `message`, looking inside its oneof when it has one. */
function fieldValue(message: Fields, field: DescField): unknown {
  if (field.oneof === undefined) return message[field.localName];
  const oneof = message[field.oneof.localName] as { case?: string; value?: unknown } | undefined;
  return oneof?.case === field.localName ? oneof.value : undefined;
}

/** Checks one value of a field: a string, a message, or (Struct and friends) plain JSON. */
function checkValue(field: DescField, value: unknown, path: string): string | undefined {
  if (typeof value === "string") return isStorableText(value) ? undefined : path;
  if (typeof value !== "object" || value === null || field.message === undefined) return undefined;
  // protobuf-es holds google.protobuf.Struct, Value and ListValue fields as plain JSON.
  if (field.message.typeName.startsWith("google.protobuf.")) return unstorableJsonPath(value, path);
  return unstorableField(field.message, value as Fields, `${path}.`);
}

/**
 * The path (proto field names, as REST clients write them) of the first string in `message` that
 * PostgreSQL cannot store; undefined when there is none.
 */
export function unstorableField(desc: DescMessage, message: Fields, prefix = ""): string | undefined {
  for (const field of desc.fields) {
    const value = fieldValue(message, field);
    if (value === undefined) continue;
    const path = `${prefix}${field.name}`;
    let found: string | undefined;
    if (field.fieldKind === "list") {
      for (const [i, item] of (value as unknown[]).entries()) {
        found ??= checkValue(field, item, `${path}[${i}]`);
      }
    } else if (field.fieldKind === "map") {
      for (const [key, item] of Object.entries(value as Fields)) {
        found ??= isStorableText(key) ? checkValue(field, item, `${path}.${key}`) : path;
      }
    } else {
      found = checkValue(field, value, path);
    }
    if (found !== undefined) return found;
  }
  return undefined;
}

/** Refuses a message holding text PostgreSQL cannot store (`invalid_argument`, naming the field). */
export function checkStorableText(desc: DescMessage, message: unknown): void {
  const path = unstorableField(desc, message as Fields);
  if (path !== undefined) throw invalid(unstorableTextMessage(path));
}

async function* checked<T>(desc: DescMessage, messages: AsyncIterable<T>): AsyncIterable<T> {
  for await (const message of messages) {
    checkStorableText(desc, message);
    yield message;
  }
}

/**
 * Refuses, at the contract boundary and for every door, a request holding text PostgreSQL cannot
 * store (REST body, path and query all become the request message): `invalid_argument`, 422 on
 * REST, naming the field. A streamed request is checked frame by frame.
 */
export function textInterceptor(): Interceptor {
  return (next) => async (req) => {
    const idempotencyKey = req.header.get("idempotency-key");
    if (idempotencyKey !== null && !isStorableText(idempotencyKey)) {
      throw invalid(unstorableTextMessage("Idempotency-Key"));
    }
    if (!req.stream) {
      checkStorableText(req.method.input, req.message);
      return next(req);
    }
    return next({ ...req, message: checked(req.method.input, req.message) });
  };
}
