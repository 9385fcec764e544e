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

/** The error a start or query gets while the server has not yet taken in a search attribute added a moment ago. */
export function isUnmappedSearchAttribute(error: unknown): boolean {
  for (let link = error; link instanceof Error; link = link.cause) {
    if (
      /no mapping defined for search attribute|is not a valid search attribute|invalid search attribute/i.test(
        link.message,
      )
    )
      return true;
  }
  return false;
}

/**
 * Waits until the workflows' search attributes can be used. On Temporal's own server an attribute
 * added a moment ago is refused (INVALID_ARGUMENT "no mapping defined for search attribute") until
 * every frontend refreshes its namespace cache, about 2 s later; the dev server hides this with a
 * setting that costs throughput on a real server. A query that names every attribute is refused
 * the same way, so it is asked until it is answered.
 */
export async function untilSearchAttributesUsable(
  connection: Pick<Connection | NativeConnection, "workflowService">,
  namespace: string,
  timeoutMs = 60_000,
): Promise<void> {
  const query = allSearchAttributes.map((key) => `${key.name} = 'smsgw-probe'`).join(" OR ");
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await connection.workflowService.countWorkflowExecutions({ namespace, query });
      return;
    } catch (error) {
      if (!isUnmappedSearchAttribute(error) || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}
