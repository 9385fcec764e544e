import { ApplicationFailure } from "@temporalio/common";
import type { MessagesService } from "../messages/index.js";
import type { DeviceHub } from "./device-hub.js";

/** The activity that runs on the task queue of the instance holding a device. */
export function createDeviceActivities(hub: DeviceHub, messages: MessagesService) {
  return {
    /**
     * Queues a `send_sms` command for a device connected to this instance. A `sealed` message's
     * text is fetched and opened here, so that it never passes through the workflow's history.
     */
    async pushToDevice(input: {
      gatewayId: number;
      messageId: string;
      recipient: string;
      message: string;
      sealed?: boolean;
    }): Promise<void> {
      const queued = hub.push(input.gatewayId, {
        type: "send_sms",
        messageId: input.messageId,
        recipient: input.recipient,
        message: input.sealed === true ? await messages.textForDevice(input.messageId) : input.message,
      });
      if (!queued) {
        throw ApplicationFailure.nonRetryable("the gateway is not connected to this instance", "DeviceNotConnected");
      }
    },
  };
}

/** The device activities' types, for workflow code. */
export type DeviceActivities = ReturnType<typeof createDeviceActivities>;
