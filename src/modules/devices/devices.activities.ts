import { ApplicationFailure } from "@temporalio/common";
import type { DeviceHub } from "./device-hub.js";

/** The activity that runs on the task queue of the instance holding a device. */
export function createDeviceActivities(hub: DeviceHub) {
  return {
    /** Queues a `send_sms` command for a device connected to this instance. */
    async pushToDevice(input: {
      gatewayId: number;
      messageId: string;
      recipient: string;
      message: string;
    }): Promise<void> {
      const queued = hub.push(input.gatewayId, {
        type: "send_sms",
        messageId: input.messageId,
        recipient: input.recipient,
        message: input.message,
      });
      if (!queued) {
        throw ApplicationFailure.nonRetryable("the gateway is not connected to this instance", "DeviceNotConnected");
      }
    },
  };
}

/** The device activities' types, for workflow code. */
export type DeviceActivities = ReturnType<typeof createDeviceActivities>;
