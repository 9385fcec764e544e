/**
 * Text PostgreSQL cannot store: a NUL character (its text types refuse it) or an unpaired UTF-16
 * surrogate (it has no UTF-8 encoding, so it would be changed silently on the way in).
 */
const unpairedSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Whether `text` can be stored as it is. */
export function isStorableText(text: string): boolean {
  return !text.includes("\u0000") && !unpairedSurrogate.test(text);
}

/**
 * The path (`metadata.note`, `to[2]`) of the first string in a JSON value, object keys included,
 * that cannot be stored; undefined when every one can.
 */
export function unstorableJsonPath(value: unknown, path: string): string | undefined {
  if (typeof value === "string") return isStorableText(value) ? undefined : path;
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const found = unstorableJsonPath(item, `${path}[${i}]`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (typeof value === "object" && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      // A key that cannot be stored is reported by its object's path: it is not echoed back.
      if (!isStorableText(key)) return path;
      const at = path === "" ? key : `${path}.${key}`;
      const found = unstorableJsonPath(item, at);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** The client-facing message for a field holding text that cannot be stored. */
export function unstorableTextMessage(path: string): string {
  return `${path} contains a character that cannot be stored (NUL or an unpaired surrogate)`;
}
