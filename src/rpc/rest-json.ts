import {
  type DescField,
  type DescMessage,
  isFieldSet,
  type JsonObject,
  type JsonValue,
  type MessageShape,
  toJson,
} from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";

function isWellKnown(message: DescMessage): boolean {
  return message.file.proto.package === "google.protobuf";
}

/** Whether a field is written as `null` when unset (messages, and `optional` scalars and enums). */
export function hasPresence(field: DescField): boolean {
  if (field.fieldKind === "message") return true;
  if (field.fieldKind === "scalar" || field.fieldKind === "enum") {
    return field.presence === FeatureSet_FieldPresence.EXPLICIT;
  }
  return false;
}

/**
 * Rebuilds `json` (the proto3 JSON of `message`) in field order, with `null` for every field with
 * presence that is unset, at every depth. Well-known types keep their own JSON form.
 */
function withNulls(schema: DescMessage, message: Record<string, unknown>, json: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const field of schema.fields) {
    const key = field.name;
    const value = json[key];
    if (!isFieldSet(message as MessageShape<DescMessage>, field)) {
      if (hasPresence(field)) out[key] = null;
      else if (value !== undefined) out[key] = value;
      continue;
    }
    const nested = field.message;
    const raw = message[field.localName];
    if (nested === undefined || isWellKnown(nested) || field.oneof !== undefined) {
      out[key] = value ?? null;
    } else if (field.fieldKind === "message" && isObject(value)) {
      out[key] = withNulls(nested, raw as Record<string, unknown>, value);
    } else if (field.fieldKind === "list" && Array.isArray(value) && Array.isArray(raw)) {
      out[key] = value.map((item, i) =>
        isObject(item) ? withNulls(nested, raw[i] as Record<string, unknown>, item) : item,
      );
    } else {
      out[key] = value ?? null;
    }
  }
  return out;
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The documented REST JSON of a message: snake_case keys in field order, zero values written out,
 * unset optional and message fields as `null`, timestamps in RFC 3339.
 */
export function toRestJson<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): JsonObject {
  const json = toJson(schema, message, { useProtoFieldName: true, alwaysEmitImplicit: true }) as JsonObject;
  return withNulls(schema, message as unknown as Record<string, unknown>, json);
}
