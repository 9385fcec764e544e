/** What the server tells a device, whatever channel carries it (gRPC stream or Action Cable). */
export type DeviceCommand =
  | { type: "send_sms"; messageId: string; recipient: string; message: string }
  | { type: "ping"; sentAt: Date };

/** What a device tells the server, whatever channel carries it. */
export type DeviceFrame =
  | {
      type: "heartbeat";
      status?: string | undefined;
      messagesInQueue?: number | undefined;
      batteryLevel?: number | undefined;
      signalStrength?: number | undefined;
    }
  | { type: "ack"; messageId: string }
  | { type: "delivery_report"; messageId: string; status: string; errorMessage: string | null }
  | { type: "message_received"; sender: string; message: string; timestamp: Date | undefined };

/** The gateway behind a connection. */
export interface ConnectedGateway {
  gatewayId: number;
  deviceId: string;
  /** The key the device authenticated with: revoking it ends the connection. */
  keyId: number;
}

/** Stores an SMS a device received; the inbound module provides it. */
export type InboundSink = (
  gatewayId: number,
  sms: { sender: string; message: string; timestamp: Date | undefined },
) => Promise<unknown>;
