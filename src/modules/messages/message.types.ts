/** Where an outbound message stands. `delivered`, `failed`, `expired` and `cancelled` are final. */
export const messageStatuses = ["queued", "dispatched", "sent", "delivered", "failed", "expired", "cancelled"] as const;
export type OutboundStatus = (typeof messageStatuses)[number];

/** What a device can report of a message it was told to send. */
export type DeviceReportStatus = "sent" | "delivered" | "failed";

/** A device's report, as the message workflow receives it. */
export interface DeviceReport {
  status: DeviceReportStatus;
  gatewayId: number;
  error: string | null;
  /** A failure the database already recorded as final (the message had been sent). */
  final?: boolean;
}

/** What starting an attempt needs: which attempt, which gateways to prefer or avoid, the command. */
export interface AttemptInput {
  messageId: string;
  attempt: number;
  preferredGatewayId: number | null;
  triedGatewayIds: number[];
  recipient: string;
  body: string;
  sealed: boolean;
  /** Only a phone running SMSGate's app can send it (SIM choice, data SMS, encrypted content). */
  app?: boolean;
  /** Expedited (SMSGate priority 100 and above): not held back by a phone's sends per minute. */
  expedited?: boolean;
}

/** How starting an attempt went: no gateway now, the message moved on (cancelled), or dispatched. */
export type AttemptStart =
  | { kind: "none"; reason: "no_gateway" | "rate_limited"; retryAfterMs: number }
  | { kind: "moved_on"; status: OutboundStatus }
  | {
      kind: "dispatched";
      attempt: number;
      gatewayId: number;
      deviceId: string;
      /** The task queue of the instance holding the phone. */
      taskQueue: string;
      /** Whether the command was already handed to the phone, connected to this very process. */
      pushed: boolean;
    };

/** The command a phone gets for a message; `sealed` means its text is fetched right before the push. */
export interface PushCommand {
  gatewayId: number;
  messageId: string;
  recipient: string;
  message: string;
  sealed: boolean;
}

/** A message as the API shows it. */
export interface MessageView {
  id: string;
  recipient: string;
  body: string;
  status: OutboundStatus;
  clientKeyId: number | null;
  gatewayId: number | null;
  attempts: number;
  createdAt: Date;
  sentAt: Date | null;
  deliveredAt: Date | null;
  failedAt: Date | null;
  errorMessage: string | null;
}

/** A message as lists show it: its view, its priority and its last gateway's device id. */
export interface ListedMessageView extends MessageView {
  priority: number;
  gatewayDeviceId: string | null;
}

/** One gateway's turn at a message, as the API shows it. */
export interface AttemptView {
  attempt: number;
  /** The gateway's device id; null when the gateway was deleted. */
  gatewayDeviceId: string | null;
  dispatchedAt: Date;
  acknowledgedAt: Date | null;
  endedAt: Date | null;
  /** How it ended (`sent`, `failed`, `timeout`, …); null while in progress. */
  outcome: string | null;
  error: string | null;
}

/** What a client asks to send. */
export interface SendInput {
  to: string;
  message: string;
  idempotencyKey?: string | undefined;
  priority?: number | undefined;
  sendAt?: Date | undefined;
  validitySeconds?: number | undefined;
  /** The device id of the gateway to try first. */
  gatewayDeviceId?: string | undefined;
  metadata?: Record<string, unknown> | undefined;
  /** The SIM to send from (1-3); only phones running SMSGate's app choose one. */
  simNumber?: number | undefined;
  /** Whether the phone asks for a delivery report (true when unset). */
  deliveryReport?: boolean | undefined;
  /** A data SMS to this port: `message` is the data in base64. */
  dataPort?: number | undefined;
  /** `message` and `to` are end-to-end encrypted: opaque, carried unchanged. */
  encrypted?: boolean | undefined;
}

/**
 * How the messages module starts and talks to message workflows. Implemented over the Temporal
 * client in `src/temporal`, so the domain knows nothing of Temporal.
 */
export interface MessageWorkflows {
  /** Starts the workflows of these messages; starting one that runs already changes nothing. */
  start(messageIds: readonly string[]): Promise<void>;
  /**
   * Starts them in the background at a bounded pace and returns at once; what does not fit (or
   * fails) is left to the message sweeper, which starts workflows for stored messages that have none.
   */
  enqueue(messageIds: readonly string[]): void;
  /** Hands a device's report to the message's workflow; a finished workflow ignores it. */
  report(messageId: string, report: DeviceReport): Promise<void>;
  /** Asks the message's workflow to cancel it. */
  cancel(messageId: string): Promise<void>;
  /** Tells the workflows of these messages that their gateway went away. */
  gatewayLost(messageIds: readonly string[], gatewayId: number): Promise<void>;
  /** Tells waiting workflows that a gateway may be available now. */
  wake(messageIds: readonly string[]): Promise<void>;
}

/** SMSGate's expedited priority: at or above it, a message is not held back by a phone's sends per minute. */
export const expeditedPriority = 100;

/**
 * Where a message may go: only to a phone running SMSGate's app (`app`: a chosen SIM, a data SMS,
 * encrypted content), and past a phone's pacing (`expedited`). Absent keys mean neither.
 */
export function routingOf(message: {
  priority: number;
  simNumber: number | null;
  dataPort: number | null;
  encrypted: boolean;
}): { app?: true; expedited?: true } {
  const app = message.simNumber !== null || message.dataPort !== null || message.encrypted;
  return {
    ...(app ? { app: true as const } : {}),
    ...(message.priority >= expeditedPriority ? { expedited: true as const } : {}),
  };
}

/** Statuses from which nothing moves. */
export const finalStatuses: readonly OutboundStatus[] = ["delivered", "failed", "expired", "cancelled"];
