import { ApplicationFailure } from "@temporalio/common";
import { inSpan, SpanKind } from "../../tracing.js";
import type { PushCommand } from "../messages/index.js";
import type { LiveDevices } from "./device-connections.js";

/** Where a sealed message's text is opened (the messages module). */
export interface SealedTexts {
  textForDevice(messageId: string): Promise<string>;
}

/**
 * Hands a `send_sms` command to a phone connected to this process; false when it is not connected
 * here (or is inactive, or its queue is full). A `sealed` message's text is fetched and opened here,
 * right before the push, so that it never passes through a workflow's history.
 */
export async function pushToConnected(
  connections: LiveDevices,
  texts: SealedTexts,
  command: PushCommand,
): Promise<boolean> {
  if (!connections.accepts(command.gatewayId)) return false;
  return inSpan("device command send_sms", SpanKind.PRODUCER, { "smsgw.message_id": command.messageId }, async () => {
    const message = command.sealed ? await texts.textForDevice(command.messageId) : command.message;
    return connections.push(command.gatewayId, {
      type: "send_sms",
      messageId: command.messageId,
      recipient: command.recipient,
      message,
    });
  });
}

/** The activity that runs on the task queue of the instance holding a device. */
export function createDeviceActivities(pushHere: (command: PushCommand) => Promise<boolean>) {
  return {
    /** Queues a `send_sms` command for a device connected to this instance. */
    async pushToDevice(input: {
      gatewayId: number;
      messageId: string;
      recipient: string;
      message: string;
      sealed?: boolean;
    }): Promise<void> {
      if (!(await pushHere({ ...input, sealed: input.sealed === true }))) {
        throw ApplicationFailure.nonRetryable("the gateway is not connected to this instance", "DeviceNotConnected");
      }
    },
  };
}

/** The device activities' types, for workflow code. */
export type DeviceActivities = ReturnType<typeof createDeviceActivities>;
