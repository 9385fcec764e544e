/** Every event smsgw emits; webhooks subscribe to them by name. */
export const eventTypes = [
  "sms_received",
  "sms_sent",
  "sms_delivered",
  "sms_failed",
  "gateway_offline",
  "gateway_online",
] as const;

/**
 * Events smsgw records for SMSGate's webhooks only (not offered to smsgw's own), each one of the
 * SMSGate app's: a phone pinged (`system:ping`, every `ping.interval_seconds`), received a data SMS
 * (`sms:data-received`), an MMS (`mms:received`) and its content (`mms:downloaded`), or started
 * (`app:started`); a message was cancelled (`sms:cancelled`).
 */
export const smsGateOnlyEventTypes = [
  "system_ping",
  "sms_data_received",
  "mms_received",
  "mms_downloaded",
  "app_started",
  "sms_cancelled",
] as const;

export type EventType = (typeof eventTypes)[number] | (typeof smsGateOnlyEventTypes)[number];

/** The outbound message events. Each happens at most once per message. */
export type MessageEventType = "sms_sent" | "sms_delivered" | "sms_failed";

/**
 * An event's payload, the body webhooks receive. Message events follow the original README's
 * example; each event's keys are listed in the README.
 */
export type EventPayload = { event: EventType; message_id?: string } & Record<string, unknown>;
