import type { ReportedSms } from "../inbound/index.js";

/** What the server tells a device, whatever channel carries it (gRPC stream or Action Cable). */
export type DeviceCommand =
  | { type: "send_sms"; messageId: string; recipient: string; message: string }
  | { type: "ping"; sentAt: Date }
  /** A frame that carried a `reportId` is recorded, or refused for good (`error`). */
  | { type: "receipt"; reportId: string; error?: string | undefined }
  /**
   * A message given to this phone was cancelled: it must not send it. Only the SMSGate app's events
   * stream carries it (`MessageCancelled`); on the other channels the phone learns it when its
   * acknowledgement or report is refused.
   */
  | { type: "cancel"; messageId: string }
  /** What the phone is told to do changed: it reads its settings again (the SMSGate app's `SettingsUpdated`). */
  | { type: "settings_updated" }
  /** Another event of the SMSGate app's events stream, with its data (only that stream carries it). */
  | { type: "smsgate_event"; event: SmsGateStreamEvent; data: unknown };

/** Events of the SMSGate app's stream that only its door raises. */
export type SmsGateStreamEvent = "WebhooksUpdated" | "MessagesExportRequested";

/** What a device tells the server, whatever channel carries it. */
export type DeviceFrame =
  | {
      type: "heartbeat";
      status?: string | undefined;
      messagesInQueue?: number | undefined;
      batteryLevel?: number | undefined;
      signalStrength?: number | undefined;
    }
  | { type: "ack"; messageId: string; reportId?: string | undefined }
  | {
      type: "delivery_report";
      messageId: string;
      status: string;
      errorMessage: string | null;
      reportId?: string | undefined;
    }
  /** The phone did not send a message it was given, because it was cancelled (the SMSGate app's `Cancelled`). */
  | { type: "cancelled"; messageId: string }
  | ({ type: "message_received" } & ReportedSms);

/**
 * How a device is connected: the gRPC/Connect stream, Action Cable, or (phones running the SMSGate
 * app) its Server-Sent Events stream, or only its calls while it polls.
 */
export type DeviceChannel = "stream" | "cable" | "sse" | "poll";

/** The gateway behind a connection. */
export interface ConnectedGateway {
  gatewayId: number;
  deviceId: string;
  /** The key the device authenticated with: revoking it ends the connection. */
  keyId: number;
}

/** Stores an SMS a device received; the inbound module provides it. */
export type InboundSink = (gatewayId: number, sms: ReportedSms) => Promise<unknown>;
