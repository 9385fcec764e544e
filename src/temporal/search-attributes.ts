import type { Connection } from "@temporalio/client";
import proto from "@temporalio/proto";
import type { NativeConnection } from "@temporalio/worker";
import { allSearchAttributes } from "../../workflows/search-attributes.js";

/** Registers the custom search attributes the workflows use, when the namespace lacks them. */
export async function ensureSearchAttributes(
  connection: Pick<Connection | NativeConnection, "operatorService">,
  namespace: string,
): Promise<void> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const known = new Set(Object.keys(existing.customAttributes ?? {}));
  const missing = allSearchAttributes.filter((key) => !known.has(key.name));
  if (missing.length === 0) return;
  const keyword = proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((key) => [key.name, keyword])),
    });
  } catch (error) {
    // Another instance may have registered them at the same moment.
    if (!String(error).includes("already exists")) throw error;
  }
}
