import type { GatewaysService } from "./gateways.service.js";

/** The gateway activities Temporal workflows call. Plain JSON in and out. */
export function createGatewayActivities(gateways: GatewaysService) {
  return {
    /** Marks gateways without a recent heartbeat offline; returns their device ids. */
    async markStaleGatewaysOffline(input: { heartbeatTimeoutSeconds: number }): Promise<string[]> {
      return gateways.markStaleOffline(input.heartbeatTimeoutSeconds);
    },
  };
}

/** The gateway activities' types, for workflow code. */
export type GatewayActivities = ReturnType<typeof createGatewayActivities>;
