import { log, proxyActivities } from "@temporalio/workflow";
import type { GatewayActivities } from "../src/modules/gateways/gateways.activities.js";

const { markStaleGatewaysOffline } = proxyActivities<GatewayActivities>({
  startToCloseTimeout: "30 seconds",
  retry: { maximumAttempts: 3 },
});

/** Input of one gateway health check. */
export interface GatewayHealthInput {
  heartbeatTimeoutSeconds: number;
}

/**
 * Marks gateways that stopped heartbeating offline. Run every minute by a Temporal Schedule, as the
 * original `CheckGatewayHealthJob` was.
 */
export async function gatewayHealthWorkflow(input: GatewayHealthInput): Promise<{ markedOffline: string[] }> {
  const markedOffline = await markStaleGatewaysOffline({ heartbeatTimeoutSeconds: input.heartbeatTimeoutSeconds });
  if (markedOffline.length > 0) log.info("gateways marked offline", { deviceIds: markedOffline });
  return { markedOffline };
}
