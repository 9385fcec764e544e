import type { DeviceFrame } from "../modules/devices/index.js";
import type { UnacknowledgedCommand } from "../modules/messages/index.js";

// smsgw's neutral message states as SMSGate's app and server name them, in one place: what a phone
// is handed (`MobileMessage`), what its snapshots (`PATCH /message`) mean as the device frames every
// other channel sends, and the states the third-party API lists by. (A recipient's SMSGate state is
// computed where its rows are read, in the messages module's `recipientStateSql`, so that lists can
// filter and count by it: `Pending` until its phone has it, `Processed` while the phone sends it,
// then `Sent`, `Delivered`, `Failed` (failed or expired) or `Cancelled`.)

/** SMSGate's states of a message and of each recipient (`ProcessingState` of the app and of client-go). */
export const processingStates = [
  "Pending",
  "Processed",
  "Sent",
  "Delivered",
  "Failed",
  "Cancelling",
  "Cancelled",
] as const;
export type ProcessingState = (typeof processingStates)[number];

/** The states a list of messages (`GET /messages?state=`) may be filtered by. */
export const listableStates: readonly ProcessingState[] = [
  "Pending",
  "Processed",
  "Sent",
  "Delivered",
  "Failed",
  "Cancelled",
];

/**
 * A message as the app takes it (`GatewayApi.Message`; SMSGate's server writes it with
 * `MessageToMobileDTO`): text as `message` and `textMessage`, or a data SMS as `dataMessage`; state
 * `Pending`, or `Cancelling` for one its sender cancelled after the phone fetched it.
 */
export function mobileMessage(command: UnacknowledgedCommand, state: "Pending" | "Cancelling" = "Pending") {
  const content =
    command.dataPort === null
      ? { message: command.body, textMessage: { text: command.body } }
      : { dataMessage: { data: command.body, port: command.dataPort } };
  return {
    id: command.messageId,
    ...content,
    phoneNumbers: [command.recipient],
    ...(command.simNumber === null ? {} : { simNumber: command.simNumber }),
    isEncrypted: command.encrypted,
    withDeliveryReport: command.deliveryReport,
    priority: command.priority,
    validUntil: command.expiresAt.toISOString(),
    createdAt: command.createdAt.toISOString(),
    state,
  };
}

/**
 * What a phone's snapshot of a message says, as the device frame smsgw's other channels send for it;
 * undefined when it says nothing new (`Cancelling`: the phone waits for the cancel it was told of).
 * A reported `Pending` means the phone has it, as `Processed` does (SMSGate's server stores it as
 * `Processed`, and no longer serves it).
 */
export function frameOfSnapshot(snapshot: {
  id: string;
  state: ProcessingState;
  error: string | null;
}): DeviceFrame | undefined {
  const messageId = snapshot.id;
  switch (snapshot.state) {
    case "Pending":
    case "Processed":
      return { type: "ack", messageId };
    case "Sent":
      return { type: "delivery_report", messageId, status: "sent", errorMessage: null };
    case "Delivered":
      return { type: "delivery_report", messageId, status: "delivered", errorMessage: null };
    case "Failed":
      return {
        type: "delivery_report",
        messageId,
        status: "failed",
        errorMessage: snapshot.error ?? "Failed on the phone",
      };
    case "Cancelled":
      return { type: "cancelled", messageId };
    case "Cancelling":
      return undefined;
  }
}
