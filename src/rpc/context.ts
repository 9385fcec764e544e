import { type ContextValues, createContextKey, createContextValues } from "@connectrpc/connect";
import type { Principal } from "../modules/keys/index.js";

/** The authenticated caller, set by the auth interceptor for every RPC that needs a key. */
export const principalKey = createContextKey<Principal | undefined>(undefined, { description: "principal" });
/** The client's network address, set by the HTTP door that took the request. */
export const peerKey = createContextKey<string | undefined>(undefined, { description: "peer address" });
/** The request id that log lines and error reports carry. */
export const requestIdKey = createContextKey<string | undefined>(undefined, { description: "request id" });

/** The context values every door sets for a call: where it came from and its request id. */
export function callContext(request: { ip: string; id: string }): ContextValues {
  return createContextValues().set(peerKey, request.ip).set(requestIdKey, request.id);
}
