import { homedir } from "node:os";
import { resolve } from "node:path";

/** The server's settings, read from the environment once. Nothing else reads `process.env`. */
export interface Config {
  readonly host: string;
  readonly port: number;
  /** Base URL devices and clients reach this server at, when it differs from the request's Host. */
  readonly publicUrl: string | undefined;
  readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined;
  readonly databaseUrl: string;
  readonly redisUrl: string;
  /** Unset: `serve` starts (or reuses) a local Temporal dev server. */
  readonly temporalAddress: string | undefined;
  readonly temporalNamespace: string;
  readonly temporalTaskQueue: string;
  readonly temporalCli: string | undefined;
  readonly temporalDevPort: number;
  readonly temporalUiPort: number;
  /**
   * The Temporal Web UI as operators reach it, for links to workflows; unset: the local dev server's
   * UI when `serve` runs one, else no links.
   */
  readonly temporalUiUrl: string | undefined;
  readonly dataDir: string;
  readonly allowedOrigins: readonly string[] | "*";
  readonly defaultCountryCode: string;
  readonly rateLimit: {
    /** Requests one API key may make per window. */
    readonly requestsPerWindow: number;
    /** Requests one client address may make per window without a key (registration). */
    readonly anonymousRequestsPerWindow: number;
    readonly windowSeconds: number;
    /** Failed authentications one client address may make per minute before it is refused (429). */
    readonly authFailuresPerMinute: number;
  };
  /** A gateway whose last heartbeat is older than this is marked offline. */
  readonly gatewayHeartbeatTimeoutSeconds: number;
  /** The time zone whose midnight starts "today" for stats and daily counters (IANA name). */
  readonly timeZone: string;
  /** How outbound messages move: retries, timeouts, per-gateway send rate. */
  readonly messages: MessagePolicyConfig;
  /** Message workflows started at once (eagerly, in this process's worker when it has room). */
  readonly workflowStartConcurrency: number;
  /** Workflows the worker keeps in memory between their tasks (`WORKFLOW_CACHE_SIZE`). */
  readonly workflowCacheSize: number;
  /** Accepted messages that may wait for a gateway before sends answer 503 with Retry-After. */
  readonly backlog: { readonly perKey: number; readonly total: number; readonly retryAfterSeconds: number };
  /** The device channel: how often devices heartbeat, how often the server pings, presence lifetime. */
  readonly devices: {
    readonly heartbeatIntervalSeconds: number;
    readonly pingIntervalSeconds: number;
    /** A connected device silent for longer is disconnected, and its presence in Redis expires. */
    readonly idleTimeoutSeconds: number;
    /** Commands waiting for one device beyond this are refused, and the message fails over. */
    readonly maxQueuedCommands: number;
  };
  readonly otp: {
    readonly maxPerPhonePerHour: number;
    readonly maxPerKeyPerHour: number;
    readonly maxPerPrefixPerHour: number;
    /** Digits after the `+` that make a number prefix (country and area code, say). */
    readonly prefixDigits: number;
    readonly maxAttempts: number;
    /** How long expired, used and replaced codes are kept before the clean-up deletes them. */
    readonly retentionHours: number;
    /** The SMS text: `{code}`, `{purpose}` and `{minutes}` are filled in. */
    readonly messageTemplate: string;
  };
  /** The key webhook secrets are encrypted with (derived from it); unset, a key file in DATA_DIR. */
  readonly secretKeyBase: string | undefined;
  readonly webhooks: {
    /** Allow webhook URLs on loopback, private and link-local addresses (development and tests). */
    readonly allowPrivateTargets: boolean;
    readonly timeoutMs: number;
    readonly retryInitialMs: number;
    readonly retryMaxMs: number;
    /** A delivery that has not succeeded this long after its event is given up. */
    readonly retryForSeconds: number;
  };
  readonly bodyLimitBytes: number;
  readonly shutdownTimeoutMs: number;
  readonly logLevel: string;
  /** `pretty` for a person at a terminal, `json` for a collector; `auto`: pretty when stdout is a terminal. */
  readonly logFormat: "auto" | "json" | "pretty";
}

/** How outbound messages move through their workflow. Passed to each workflow as its input. */
export interface MessagePolicyConfig {
  /** Dispatches to gateways before a message fails for good. */
  readonly maxAttempts: number;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  /** How long a dispatched message waits for the gateway's first report before failing over. */
  readonly dispatchTimeoutMs: number;
  /** How long a sent message waits for a delivery report before its workflow ends at `sent`. */
  readonly deliveryTimeoutMs: number;
  /** How long a push may wait for the instance holding the device before failing over. */
  readonly pushScheduleToStartMs: number;
  /** How often a message with no gateway available looks again (a gateway coming online wakes it). */
  readonly noGatewayRecheckMs: number;
  /**
   * A gateway that acknowledged a message and then reports nothing at all keeps it this long before
   * it is given to another gateway (0, the default: never; it fails after `deliveryTimeoutMs`).
   * Opting in risks a second SMS when the first phone did send it and only its report was lost.
   */
  readonly resendUnreportedAfterMs: number;
  /** How long a message may wait to be sent when the client gives no validity. */
  readonly defaultValiditySeconds: number;
  /** SMS one gateway may be given per minute (Android itself allows about 30). */
  readonly gatewaySendsPerMinute: number;
  /** How long a gateway that failed a message is passed over when others are available. */
  readonly failedGatewayCooldownSeconds: number;
}

/** A setting that is not valid; `smsgw` prints it and exits. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

type Env = Readonly<Record<string, string | undefined>>;

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, not "${raw}"`);
  }
  return value;
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (["1", "true", "yes"].includes(raw.toLowerCase())) return true;
  if (["0", "false", "no"].includes(raw.toLowerCase())) return false;
  throw new ConfigError(`${name} must be true or false, not "${raw}"`);
}

function text(env: Env, name: string, fallback: string): string {
  const raw = env[name];
  return raw === undefined || raw === "" ? fallback : raw;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(", ")}, not "${raw}"`);
  }
  return raw as T;
}

function optional(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw === "" ? undefined : raw;
}

function origins(raw: string): readonly string[] | "*" {
  const list = raw
    .split(",")
    .map((origin) => origin.trim())
    .filter((origin) => origin !== "");
  return list.length === 0 || list.includes("*") ? "*" : Object.freeze(list);
}

function otpTemplate(template: string): string {
  if (!template.includes("{code}")) throw new ConfigError("OTP_MESSAGE_TEMPLATE must contain {code}");
  return template;
}

function timeZone(name: string): string {
  try {
    new Intl.DateTimeFormat("en", { timeZone: name });
    return name;
  } catch {
    throw new ConfigError(`TIME_ZONE must be an IANA time zone such as Europe/Berlin, not "${name}"`);
  }
}

/** Reads and validates the configuration from `env` (the process environment by default). */
export function loadConfig(env: Env = process.env): Config {
  const certFile = optional(env, "TLS_CERT");
  const keyFile = optional(env, "TLS_KEY");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError("TLS_CERT and TLS_KEY must be set together");
  }
  const country = text(env, "DEFAULT_COUNTRY_CODE", "US").toUpperCase();
  if (!/^[A-Z]{2}$/.test(country)) {
    throw new ConfigError(`DEFAULT_COUNTRY_CODE must be a two-letter country code, not "${country}"`);
  }
  const publicUrl = optional(env, "PUBLIC_URL");
  if (publicUrl !== undefined && !URL.canParse(publicUrl)) {
    throw new ConfigError(`PUBLIC_URL must be a URL, not "${publicUrl}"`);
  }
  return Object.freeze({
    host: text(env, "HOST", "0.0.0.0"),
    port: integer(env, "PORT", 3000, 0, 65535),
    publicUrl: publicUrl?.replace(/\/+$/, ""),
    tls: certFile !== undefined && keyFile !== undefined ? Object.freeze({ certFile, keyFile }) : undefined,
    databaseUrl: text(env, "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/smsgw"),
    redisUrl: text(env, "REDIS_URL", "redis://127.0.0.1:6379/0"),
    temporalAddress: optional(env, "TEMPORAL_ADDRESS"),
    temporalNamespace: text(env, "TEMPORAL_NAMESPACE", "default"),
    temporalTaskQueue: text(env, "TEMPORAL_TASK_QUEUE", "smsgw"),
    temporalCli: optional(env, "TEMPORAL_CLI"),
    temporalDevPort: integer(env, "TEMPORAL_DEV_PORT", 7233, 1, 65535),
    temporalUiPort: integer(env, "TEMPORAL_UI_PORT", 8233, 1, 65535),
    temporalUiUrl:
      optional(env, "TEMPORAL_UI_URL") ??
      (optional(env, "TEMPORAL_ADDRESS") === undefined
        ? `http://localhost:${integer(env, "TEMPORAL_UI_PORT", 8233, 1, 65535)}`
        : undefined),
    dataDir: resolve(text(env, "DATA_DIR", ".data")),
    allowedOrigins: origins(text(env, "ALLOWED_ORIGINS", "*")),
    defaultCountryCode: country,
    rateLimit: Object.freeze({
      requestsPerWindow: integer(env, "RATE_LIMIT_REQUESTS", 600, 1, 1_000_000),
      anonymousRequestsPerWindow: integer(env, "RATE_LIMIT_ANONYMOUS_REQUESTS", 30, 1, 1_000_000),
      windowSeconds: integer(env, "RATE_LIMIT_WINDOW_SECONDS", 60, 1, 86_400),
      authFailuresPerMinute: integer(env, "AUTH_FAILURES_PER_MINUTE", 30, 1, 1_000_000),
    }),
    gatewayHeartbeatTimeoutSeconds: integer(env, "GATEWAY_HEARTBEAT_TIMEOUT_SECONDS", 120, 5, 86_400),
    timeZone: timeZone(text(env, "TIME_ZONE", "UTC")),
    workflowStartConcurrency: integer(env, "WORKFLOW_START_CONCURRENCY", 8, 1, 1000),
    workflowCacheSize: integer(env, "WORKFLOW_CACHE_SIZE", 250, 10, 100_000),
    backlog: Object.freeze({
      perKey: integer(env, "BACKLOG_MAX_PER_KEY", 5000, 1, 10_000_000),
      total: integer(env, "BACKLOG_MAX_TOTAL", 10_000, 1, 10_000_000),
      retryAfterSeconds: integer(env, "BACKLOG_RETRY_AFTER_SECONDS", 2, 1, 3600),
    }),
    messages: Object.freeze({
      maxAttempts: integer(env, "MESSAGE_MAX_ATTEMPTS", 5, 1, 100),
      retryInitialMs: integer(env, "MESSAGE_RETRY_INITIAL_MS", 2000, 1, 3_600_000),
      retryMaxMs: integer(env, "MESSAGE_RETRY_MAX_MS", 60_000, 1, 86_400_000),
      dispatchTimeoutMs: integer(env, "MESSAGE_DISPATCH_TIMEOUT_MS", 60_000, 100, 86_400_000),
      deliveryTimeoutMs: integer(env, "MESSAGE_DELIVERY_TIMEOUT_MS", 3_600_000, 100, 7 * 86_400_000),
      pushScheduleToStartMs: integer(env, "MESSAGE_PUSH_TIMEOUT_MS", 10_000, 100, 600_000),
      noGatewayRecheckMs: integer(env, "MESSAGE_NO_GATEWAY_RECHECK_MS", 30_000, 100, 3_600_000),
      resendUnreportedAfterMs: integer(env, "MESSAGE_RESEND_UNREPORTED_AFTER_MS", 0, 0, 7 * 86_400_000),
      defaultValiditySeconds: integer(env, "MESSAGE_DEFAULT_VALIDITY_SECONDS", 86_400, 1, 30 * 86_400),
      gatewaySendsPerMinute: integer(env, "GATEWAY_SENDS_PER_MINUTE", 30, 1, 100_000),
      failedGatewayCooldownSeconds: integer(env, "GATEWAY_FAILURE_COOLDOWN_SECONDS", 60, 0, 86_400),
    }),
    devices: Object.freeze({
      heartbeatIntervalSeconds: integer(env, "DEVICE_HEARTBEAT_INTERVAL_SECONDS", 30, 1, 3600),
      pingIntervalSeconds: integer(env, "DEVICE_PING_INTERVAL_SECONDS", 20, 1, 3600),
      idleTimeoutSeconds: integer(env, "DEVICE_IDLE_TIMEOUT_SECONDS", 90, 2, 86_400),
      maxQueuedCommands: integer(env, "DEVICE_MAX_QUEUED_COMMANDS", 1000, 1, 1_000_000),
    }),
    otp: Object.freeze({
      maxPerPhonePerHour: integer(env, "OTP_MAX_PER_PHONE_PER_HOUR", 3, 1, 1000),
      maxPerKeyPerHour: integer(env, "OTP_MAX_PER_KEY_PER_HOUR", 1000, 1, 10_000_000),
      maxPerPrefixPerHour: integer(env, "OTP_MAX_PER_PREFIX_PER_HOUR", 100, 1, 10_000_000),
      prefixDigits: integer(env, "OTP_PREFIX_DIGITS", 6, 1, 15),
      maxAttempts: integer(env, "OTP_MAX_ATTEMPTS", 3, 1, 100),
      retentionHours: integer(env, "OTP_RETENTION_HOURS", 48, 1, 24 * 365),
      messageTemplate: otpTemplate(
        text(env, "OTP_MESSAGE_TEMPLATE", "Your {purpose} code is {code}. It expires in {minutes} minutes."),
      ),
    }),
    secretKeyBase: optional(env, "SECRET_KEY_BASE"),
    webhooks: Object.freeze({
      allowPrivateTargets: boolean(env, "WEBHOOK_ALLOW_PRIVATE_TARGETS", false),
      timeoutMs: integer(env, "WEBHOOK_TIMEOUT_MS", 10_000, 100, 120_000),
      retryInitialMs: integer(env, "WEBHOOK_RETRY_INITIAL_MS", 10_000, 1, 3_600_000),
      retryMaxMs: integer(env, "WEBHOOK_RETRY_MAX_MS", 3_600_000, 1, 86_400_000),
      retryForSeconds: integer(env, "WEBHOOK_RETRY_FOR_SECONDS", 93_600, 1, 30 * 86_400),
    }),
    bodyLimitBytes: integer(env, "BODY_LIMIT_BYTES", 1_048_576, 1024, 64 * 1_048_576),
    shutdownTimeoutMs: integer(env, "SHUTDOWN_TIMEOUT_MS", 10_000, 0, 600_000),
    logLevel: text(env, "LOG_LEVEL", "info"),
    logFormat: oneOf(env, "LOG_FORMAT", ["auto", "json", "pretty"] as const, "auto"),
  });
}

/** Where `scripts/setup-temporal.sh` installs the Temporal CLI when it is not on PATH. */
export function cachedTemporalCliPath(env: Env = process.env): string {
  const cacheHome = optional(env, "XDG_CACHE_HOME") ?? resolve(homedir(), ".cache");
  return resolve(cacheHome, "smsgw", "bin", "temporal");
}
