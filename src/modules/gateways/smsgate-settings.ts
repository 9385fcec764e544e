import { invalid } from "../../shared/errors.js";

// What smsgw tells a phone running SMSGate's Android app to do, kept in its gateway's `metadata` as
// `smsgate_settings`, and the settings map the app takes from `GET /mobile/v1/settings` (its
// `SettingsService`: sections `gateway`, `messages`, `ping`, `webhooks`, each with the app's keys).

/** The settings an operator sets for a phone; absent ones keep the app's own. */
export interface StoredSmsGateSettings {
  notification_channel?: string;
  ping_interval_seconds?: number;
  send_interval_min_seconds?: number;
  send_interval_max_seconds?: number;
  limit_period?: string;
  limit_value?: number;
}

const channels = ["SSE_ONLY", "AUTO"];
const periods = ["Disabled", "PerMinute", "Per30Minutes", "PerHour", "PerDay"];

function whole(value: number | undefined, field: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < min || value > max) throw invalid(`${field} must be from ${min} to ${max}`);
  return value;
}

function oneOf(value: string | undefined, field: string, allowed: string[]): string | undefined {
  if (value === undefined) return undefined;
  if (!allowed.includes(value)) throw invalid(`${field} must be one of ${allowed.join(", ")}`);
  return value;
}

/** A change to a phone's settings, checked; its absent fields are left out. */
export function checkedSettings(
  patch: StoredSmsGateSettings,
  current: StoredSmsGateSettings = {},
): StoredSmsGateSettings {
  const checked: StoredSmsGateSettings = {};
  const put = <K extends keyof StoredSmsGateSettings>(key: K, value: StoredSmsGateSettings[K] | undefined) => {
    if (value !== undefined) checked[key] = value;
  };
  put("notification_channel", oneOf(patch.notification_channel, "notification_channel", channels));
  put("ping_interval_seconds", whole(patch.ping_interval_seconds, "ping_interval_seconds", 0, 86_400));
  put("send_interval_min_seconds", whole(patch.send_interval_min_seconds, "send_interval_min_seconds", 0, 3600));
  put("send_interval_max_seconds", whole(patch.send_interval_max_seconds, "send_interval_max_seconds", 0, 3600));
  put("limit_period", oneOf(patch.limit_period, "limit_period", periods));
  put("limit_value", whole(patch.limit_value, "limit_value", 1, 100_000));
  const merged = { ...current, ...checked };
  if ((merged.send_interval_min_seconds ?? 0) > (merged.send_interval_max_seconds ?? Number.POSITIVE_INFINITY)) {
    throw invalid("send_interval_min_seconds must not be more than send_interval_max_seconds");
  }
  return checked;
}

/**
 * The settings map the app imports: what the operator set, SSE for real time by default, and the key
 * the phone signs its webhooks with. Never a `cloud_url`: the app would take it as its server's address.
 */
export function appSettings(
  settings: StoredSmsGateSettings,
  signingKey: string,
): Record<string, Record<string, unknown>> {
  const map: Record<string, Record<string, unknown>> = {
    gateway: { notification_channel: settings.notification_channel ?? "SSE_ONLY" },
    webhooks: { signing_key: signingKey },
  };
  if (settings.ping_interval_seconds !== undefined) map.ping = { interval_seconds: settings.ping_interval_seconds };
  const messages: Record<string, unknown> = {};
  if (settings.send_interval_min_seconds !== undefined) messages.send_interval_min = settings.send_interval_min_seconds;
  if (settings.send_interval_max_seconds !== undefined) messages.send_interval_max = settings.send_interval_max_seconds;
  if (settings.limit_period !== undefined) messages.limit_period = settings.limit_period;
  if (settings.limit_value !== undefined) messages.limit_value = settings.limit_value;
  if (Object.keys(messages).length > 0) map.messages = messages;
  return map;
}
