import type { GatewayRegistry } from "./gateways.service.js";

/** The gateway activities Temporal workflows call. Plain JSON in and out. */
export function createGatewayActivities(
  gateways: GatewayRegistry,
  /** Tells the workflows of a gateway's messages in flight that it went away. */
  gatewayLost: (gatewayId: number) => Promise<void>,
) {
  return {
    /**
     * Marks gateways without a recent heartbeat offline, fails their messages in flight over, and
     * returns their device ids.
     */
    async markStaleGatewaysOffline(input: { heartbeatTimeoutSeconds: number }): Promise<string[]> {
      const stale = await gateways.markStaleOffline(input.heartbeatTimeoutSeconds);
      for (const gateway of stale) await gatewayLost(gateway.id);
      return stale.map((gateway) => gateway.deviceId);
    },
    /** Resets every gateway's daily counters; returns how many gateways. */
    resetDailyCounters: (): Promise<number> => gateways.resetDailyCounters(),
  };
}

/** The gateway activities' types, for workflow code. */
export type GatewayActivities = ReturnType<typeof createGatewayActivities>;
