import { homedir } from "node:os";
import { delimiter, resolve } from "node:path";
import { z } from "zod";
import { redisOptions } from "./shared/redis.js";
import { tuning } from "./tuning.js";

// The configuration is one zod schema: each variable is declared once below, with its type, its
// range and its default, and the `Config` type is derived from the schema. zod because it is already
// the de-facto schema library of TypeScript (types inferred from the schema, no code generation, no
// runtime dependencies of its own), and because the same schema can be walked by a test that checks
// the manual's configuration table against it.
//
// This file is the only reader of `process.env`: everything else takes a `Config`.

/** A setting that is not valid; `smsgw` prints it and exits. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

type Env = Readonly<Record<string, string | undefined>>;

/** An empty variable counts as unset, as a shell's `VAR=` means. */
const unsetWhenBlank = (value: unknown) => (value === "" ? undefined : value);

/** A whole number from `min` to `max`. */
function integer(fallback: number, min: number, max: number) {
  return z
    .preprocess(unsetWhenBlank, z.coerce.number().int().min(min).max(max).default(fallback))
    .describe(`must be a whole number from ${min} to ${max}`);
}

/** Any text. */
function text(fallback: string) {
  return z.preprocess(unsetWhenBlank, z.string().default(fallback));
}

/** Text, or unset. */
function optional() {
  return z.preprocess(unsetWhenBlank, z.string().optional());
}

/** true/false, 1/0 or yes/no. */
function boolean(fallback: boolean) {
  const words: Record<string, boolean> = { "1": true, true: true, yes: true, "0": false, false: false, no: false };
  return z
    .preprocess(
      (value) => (typeof value === "string" ? (words[value.toLowerCase()] ?? value) : unsetWhenBlank(value)),
      z.boolean().default(fallback),
    )
    .describe("must be true or false");
}

/** One of a few words. */
function oneOf<const T extends readonly [string, ...string[]]>(allowed: T, fallback: T[number]) {
  return z
    .preprocess(unsetWhenBlank, z.enum(allowed).default(fallback))
    .describe(`must be one of ${allowed.join(", ")}`);
}

const timeZoneName = z
  .preprocess(
    unsetWhenBlank,
    z
      .string()
      .default("UTC")
      .refine((name) => {
        try {
          new Intl.DateTimeFormat("en", { timeZone: name });
          return true;
        } catch {
          return false;
        }
      }),
  )
  .describe("must be an IANA time zone such as Europe/Berlin");

/**
 * Every environment variable smsgw reads, with its default. The manual's configuration table
 * (docs/configuration.md) is checked against this object by a test.
 */
export const environment = {
  HOST: text("0.0.0.0"),
  PORT: integer(3000, 0, 65535),
  PUBLIC_URL: z.preprocess(unsetWhenBlank, z.string().refine(URL.canParse).optional()).describe("must be a URL"),
  TLS_CERT: optional(),
  TLS_KEY: optional(),
  /** Unset: an embedded PostgreSQL in DATA_DIR/pg (src/embedded/postgres.ts). */
  DATABASE_URL: optional(),
  /** Unset: an embedded Redis in the server's process (src/embedded/redis.ts); one instance only. */
  REDIS_URL: optional(),
  /** The embedded PostgreSQL's port (on 127.0.0.1), when DATABASE_URL is unset. */
  EMBEDDED_POSTGRES_PORT: integer(15432, 1, 65535),
  TEMPORAL_ADDRESS: optional(),
  TEMPORAL_NAMESPACE: text("default"),
  TEMPORAL_TASK_QUEUE: text("smsgw"),
  TEMPORAL_CLI: optional(),
  TEMPORAL_DEV_PORT: integer(7233, 1, 65535),
  TEMPORAL_UI_PORT: integer(8233, 1, 65535),
  TEMPORAL_UI_URL: optional(),
  /** The dev server's soft memory limit (Go's own variable, passed on to it). */
  GOMEMLIMIT: text(tuning.devServerMemoryLimit.value),
  DATA_DIR: text(".data"),
  ALLOWED_ORIGINS: text("*"),
  DEFAULT_COUNTRY_CODE: z
    .preprocess(
      (value) => (typeof value === "string" ? unsetWhenBlank(value.toUpperCase()) : value),
      z
        .string()
        .regex(/^[A-Z]{2}$/)
        .default("US"),
    )
    .describe("must be a two-letter country code"),
  TIME_ZONE: timeZoneName,
  GATEWAY_SENDS_PER_MINUTE: integer(30, 1, 100_000),
  GATEWAY_FAILURE_COOLDOWN_SECONDS: integer(60, 0, 86_400),
  GATEWAY_HEARTBEAT_TIMEOUT_SECONDS: integer(120, 5, 86_400),
  MESSAGE_MAX_ATTEMPTS: integer(5, 1, 100),
  MESSAGE_RETRY_INITIAL_MS: integer(2000, 1, 3_600_000),
  MESSAGE_RETRY_MAX_MS: integer(60_000, 1, 86_400_000),
  MESSAGE_DISPATCH_TIMEOUT_MS: integer(60_000, 100, 86_400_000),
  MESSAGE_DELIVERY_TIMEOUT_MS: integer(3_600_000, 100, 7 * 86_400_000),
  MESSAGE_PUSH_TIMEOUT_MS: integer(10_000, 100, 600_000),
  MESSAGE_NO_GATEWAY_RECHECK_MS: integer(30_000, 100, 3_600_000),
  MESSAGE_RESEND_UNREPORTED_AFTER_MS: integer(0, 0, 7 * 86_400_000),
  MESSAGE_DEFAULT_VALIDITY_SECONDS: integer(86_400, 1, 30 * 86_400),
  WORKFLOW_START_CONCURRENCY: integer(tuning.workflowStartConcurrency.value, 1, 1000),
  WORKFLOW_CACHE_SIZE: integer(tuning.workflowCacheSize.value, 10, 100_000),
  BACKLOG_MAX_PER_KEY: integer(5000, 1, 10_000_000),
  BACKLOG_MAX_TOTAL: integer(10_000, 1, 10_000_000),
  BACKLOG_RETRY_AFTER_SECONDS: integer(2, 1, 3600),
  DEVICE_HEARTBEAT_INTERVAL_SECONDS: integer(30, 1, 3600),
  DEVICE_PING_INTERVAL_SECONDS: integer(20, 1, 3600),
  DEVICE_IDLE_TIMEOUT_SECONDS: integer(90, 2, 86_400),
  DEVICE_MAX_QUEUED_COMMANDS: integer(1000, 1, 1_000_000),
  DEVICE_MAX_CONNECTIONS: integer(10_000, 1, 100_000),
  OTP_MAX_PER_PHONE_PER_HOUR: integer(3, 1, 1000),
  OTP_MAX_PER_KEY_PER_HOUR: integer(1000, 1, 10_000_000),
  OTP_MAX_PER_PREFIX_PER_HOUR: integer(100, 1, 10_000_000),
  OTP_PREFIX_DIGITS: integer(6, 1, 15),
  OTP_MAX_ATTEMPTS: integer(3, 1, 100),
  OTP_RETENTION_HOURS: integer(48, 1, 24 * 365),
  OTP_MESSAGE_TEMPLATE: z
    .preprocess(
      unsetWhenBlank,
      z
        .string()
        .default("Your {purpose} code is {code}. It expires in {minutes} minutes.")
        .refine((template) => template.includes("{code}")),
    )
    .describe("must contain {code}"),
  SECRET_KEY_BASE: optional(),
  SMSGATE_JWT_ACCESS_TTL_SECONDS: integer(900, 1, 365 * 86_400),
  SMSGATE_JWT_REFRESH_TTL_SECONDS: integer(30 * 86_400, 2, 10 * 365 * 86_400),
  WEBHOOK_ALLOW_PRIVATE_TARGETS: boolean(false),
  WEBHOOK_TIMEOUT_MS: integer(10_000, 100, 120_000),
  WEBHOOK_RETRY_INITIAL_MS: integer(10_000, 1, 3_600_000),
  WEBHOOK_RETRY_MAX_MS: integer(3_600_000, 1, 86_400_000),
  WEBHOOK_RETRY_FOR_SECONDS: integer(93_600, 1, 30 * 86_400),
  RATE_LIMIT_REQUESTS: integer(600, 1, 1_000_000),
  RATE_LIMIT_ANONYMOUS_REQUESTS: integer(30, 1, 1_000_000),
  RATE_LIMIT_WINDOW_SECONDS: integer(60, 1, 86_400),
  AUTH_FAILURES_PER_MINUTE: integer(30, 1, 1_000_000),
  BODY_LIMIT_BYTES: integer(1_048_576, 1024, 64 * 1_048_576),
  SHUTDOWN_TIMEOUT_MS: integer(10_000, 0, 600_000),
  LOG_LEVEL: text("info"),
  LOG_FORMAT: oneOf(["auto", "json", "pretty"], "auto"),
  OTEL_EXPORTER_OTLP_ENDPOINT: optional(),
  OTEL_SERVICE_NAME: text("smsgw"),
  /** Where the Temporal CLI is cached (`scripts/setup-temporal.sh`): `$XDG_CACHE_HOME/smsgw/bin`. */
  XDG_CACHE_HOME: text(resolve(homedir(), ".cache")),
  /** Searched for the `temporal` CLI. */
  PATH: text(""),
};

const environmentSchema = z.object(environment);

function origins(raw: string): readonly string[] | "*" {
  const list = raw
    .split(",")
    .map((origin) => origin.trim())
    .filter((origin) => origin !== "");
  return list.length === 0 || list.includes("*") ? "*" : Object.freeze(list);
}

/** The variables, read, shaped as the server uses them. */
const configSchema = environmentSchema.transform((env, ctx) => {
  if ((env.TLS_CERT === undefined) !== (env.TLS_KEY === undefined)) {
    ctx.issues.push({
      code: "custom",
      path: ["TLS_CERT"],
      message: "TLS_CERT and TLS_KEY must be set together",
      input: env,
    });
  }
  try {
    if (env.REDIS_URL !== undefined) redisOptions(env.REDIS_URL);
  } catch (error) {
    ctx.issues.push({ code: "custom", path: ["REDIS_URL"], message: (error as Error).message, input: env });
  }
  return {
    host: env.HOST,
    port: env.PORT,
    /** Base URL devices and clients reach this server at, when it differs from the request's Host. */
    publicUrl: env.PUBLIC_URL?.replace(/\/+$/, ""),
    tls:
      env.TLS_CERT !== undefined && env.TLS_KEY !== undefined
        ? { certFile: env.TLS_CERT, keyFile: env.TLS_KEY }
        : undefined,
    /** Unset: the embedded PostgreSQL (`embedded`). */
    databaseUrl: env.DATABASE_URL,
    /** Unset: the embedded Redis (`embedded`). */
    redisUrl: env.REDIS_URL,
    /** Where the embedded backends keep their state, when DATABASE_URL or REDIS_URL is unset. */
    embedded: {
      postgresDir: resolve(env.DATA_DIR, "pg"),
      postgresPort: env.EMBEDDED_POSTGRES_PORT,
      /** The embedded Redis's port and password, for commands run beside the server. */
      redisStateFile: resolve(env.DATA_DIR, "redis.json"),
    },
    /** Unset: `serve` starts (or reuses) a local Temporal dev server. */
    temporalAddress: env.TEMPORAL_ADDRESS,
    temporalNamespace: env.TEMPORAL_NAMESPACE,
    temporalTaskQueue: env.TEMPORAL_TASK_QUEUE,
    /** The local dev server (when `temporalAddress` is unset). */
    temporalDev: {
      /** Where to look for the `temporal` CLI: TEMPORAL_CLI, then PATH, then the cache setup-temporal.sh fills. */
      cliCandidates: [
        ...(env.TEMPORAL_CLI === undefined ? [] : [env.TEMPORAL_CLI]),
        ...env.PATH.split(delimiter)
          .filter((dir) => dir !== "")
          .map((dir) => resolve(dir, "temporal")),
        resolve(env.XDG_CACHE_HOME, "smsgw", "bin", "temporal"),
      ],
      /** Where the SDK downloads the CLI when it is found nowhere else. */
      downloadDir: resolve(env.XDG_CACHE_HOME, "smsgw", "temporal"),
      port: env.TEMPORAL_DEV_PORT,
      uiPort: env.TEMPORAL_UI_PORT,
    },
    /**
     * The Temporal Web UI as operators reach it, for links to workflows; unset: the local dev
     * server's UI when `serve` runs one, else no links.
     */
    temporalUiUrl:
      env.TEMPORAL_UI_URL ??
      (env.TEMPORAL_ADDRESS === undefined ? `http://localhost:${env.TEMPORAL_UI_PORT}` : undefined),
    dataDir: resolve(env.DATA_DIR),
    allowedOrigins: origins(env.ALLOWED_ORIGINS),
    defaultCountryCode: env.DEFAULT_COUNTRY_CODE,
    rateLimit: {
      /** Requests one API key may make per window. */
      requestsPerWindow: env.RATE_LIMIT_REQUESTS,
      /** Requests one client address may make per window without a key (registration). */
      anonymousRequestsPerWindow: env.RATE_LIMIT_ANONYMOUS_REQUESTS,
      windowSeconds: env.RATE_LIMIT_WINDOW_SECONDS,
      /** Failed authentications one client address may make per minute before it is refused (429). */
      authFailuresPerMinute: env.AUTH_FAILURES_PER_MINUTE,
    },
    /** A gateway whose last heartbeat is older than this is marked offline. */
    gatewayHeartbeatTimeoutSeconds: env.GATEWAY_HEARTBEAT_TIMEOUT_SECONDS,
    /** The time zone whose midnight starts "today" for stats and daily counters (IANA name). */
    timeZone: env.TIME_ZONE,
    /** How outbound messages move through their workflow. Passed to each workflow as its input. */
    messages: {
      /** Dispatches to gateways before a message fails for good. */
      maxAttempts: env.MESSAGE_MAX_ATTEMPTS,
      retryInitialMs: env.MESSAGE_RETRY_INITIAL_MS,
      retryMaxMs: env.MESSAGE_RETRY_MAX_MS,
      /** How long a dispatched message waits for the gateway's first report before failing over. */
      dispatchTimeoutMs: env.MESSAGE_DISPATCH_TIMEOUT_MS,
      /** How long a sent message waits for a delivery report before its workflow ends at `sent`. */
      deliveryTimeoutMs: env.MESSAGE_DELIVERY_TIMEOUT_MS,
      /** How long a push may wait for the instance holding the device before failing over. */
      pushScheduleToStartMs: env.MESSAGE_PUSH_TIMEOUT_MS,
      /** How often a message with no gateway available looks again (a gateway coming online wakes it). */
      noGatewayRecheckMs: env.MESSAGE_NO_GATEWAY_RECHECK_MS,
      /**
       * A gateway that acknowledged a message and then reports nothing at all keeps it this long
       * before it is given to another gateway (0, the default: never; it fails after
       * `deliveryTimeoutMs`). Opting in risks a second SMS when the first phone did send it and only
       * its report was lost.
       */
      resendUnreportedAfterMs: env.MESSAGE_RESEND_UNREPORTED_AFTER_MS,
      /** How long a message may wait to be sent when the client gives no validity. */
      defaultValiditySeconds: env.MESSAGE_DEFAULT_VALIDITY_SECONDS,
      /** SMS one gateway may be given per minute (Android itself allows about 30). */
      gatewaySendsPerMinute: env.GATEWAY_SENDS_PER_MINUTE,
      /** How long a gateway that failed a message is passed over when others are available. */
      failedGatewayCooldownSeconds: env.GATEWAY_FAILURE_COOLDOWN_SECONDS,
    },
    /** Message workflows started at once (eagerly, in this process's worker when it has room). */
    workflowStartConcurrency: env.WORKFLOW_START_CONCURRENCY,
    /** Workflows the worker keeps in memory between their tasks. */
    workflowCacheSize: env.WORKFLOW_CACHE_SIZE,
    /** Accepted messages that may wait for a gateway before sends answer 503 with Retry-After. */
    backlog: {
      perKey: env.BACKLOG_MAX_PER_KEY,
      total: env.BACKLOG_MAX_TOTAL,
      retryAfterSeconds: env.BACKLOG_RETRY_AFTER_SECONDS,
    },
    /** The device channel: how often devices heartbeat, how often the server pings, presence lifetime. */
    devices: {
      heartbeatIntervalSeconds: env.DEVICE_HEARTBEAT_INTERVAL_SECONDS,
      pingIntervalSeconds: env.DEVICE_PING_INTERVAL_SECONDS,
      /** A connected device silent for longer is disconnected, and its presence in Redis expires. */
      idleTimeoutSeconds: env.DEVICE_IDLE_TIMEOUT_SECONDS,
      /** Commands waiting for one device beyond this are refused, and the message fails over. */
      maxQueuedCommands: env.DEVICE_MAX_QUEUED_COMMANDS,
      /**
       * Devices one instance holds at most; one more is refused (Unavailable, 503) and connects to
       * another instance. `npm start` sizes the V8 heap for this many (`heapMbFor` in tuning.ts).
       */
      maxConnections: env.DEVICE_MAX_CONNECTIONS,
    },
    otp: {
      maxPerPhonePerHour: env.OTP_MAX_PER_PHONE_PER_HOUR,
      maxPerKeyPerHour: env.OTP_MAX_PER_KEY_PER_HOUR,
      maxPerPrefixPerHour: env.OTP_MAX_PER_PREFIX_PER_HOUR,
      /** Digits after the `+` that make a number prefix (country and area code, say). */
      prefixDigits: env.OTP_PREFIX_DIGITS,
      maxAttempts: env.OTP_MAX_ATTEMPTS,
      /** How long expired, used and replaced codes are kept before the clean-up deletes them. */
      retentionHours: env.OTP_RETENTION_HOURS,
      /** The SMS text: `{code}`, `{purpose}` and `{minutes}` are filled in. */
      messageTemplate: env.OTP_MESSAGE_TEMPLATE,
    },
    /** The key webhook secrets are encrypted with (derived from it); unset, a key file in DATA_DIR. */
    secretKeyBase: env.SECRET_KEY_BASE,
    /**
     * The signed tokens (JWTs) of SMSGate's third-party API: an access token lives at most this
     * long (SMSGate's 15 minutes), its refresh token this long (SMSGate's 30 days; longer than it).
     */
    smsGateTokens: {
      accessTtlSeconds: env.SMSGATE_JWT_ACCESS_TTL_SECONDS,
      refreshTtlSeconds: Math.max(env.SMSGATE_JWT_REFRESH_TTL_SECONDS, env.SMSGATE_JWT_ACCESS_TTL_SECONDS + 1),
    },
    webhooks: {
      /** Allow webhook URLs on loopback, private and link-local addresses (development and tests). */
      allowPrivateTargets: env.WEBHOOK_ALLOW_PRIVATE_TARGETS,
      timeoutMs: env.WEBHOOK_TIMEOUT_MS,
      retryInitialMs: env.WEBHOOK_RETRY_INITIAL_MS,
      retryMaxMs: env.WEBHOOK_RETRY_MAX_MS,
      /** A delivery that has not succeeded this long after its event is given up. */
      retryForSeconds: env.WEBHOOK_RETRY_FOR_SECONDS,
    },
    /** OpenTelemetry tracing over OTLP/HTTP, when an endpoint is set. */
    tracing:
      env.OTEL_EXPORTER_OTLP_ENDPOINT === undefined
        ? undefined
        : { endpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, ""), serviceName: env.OTEL_SERVICE_NAME },
    bodyLimitBytes: env.BODY_LIMIT_BYTES,
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    logLevel: env.LOG_LEVEL,
    /** `pretty` for a person at a terminal, `json` for a collector; `auto`: pretty when stdout is a terminal. */
    logFormat: env.LOG_FORMAT,
    /** The environment child processes (the Temporal dev server) inherit. */
    inherited: Object.freeze({ ...processEnvironment(), GOMEMLIMIT: env.GOMEMLIMIT }),
  };
});

/** The server's settings, read from the environment once. */
export type Config = DeepReadonly<z.output<typeof configSchema>>;

/** A configuration with its database and Redis known: configured, or embedded ones started (src/embedded). */
export type ConnectedConfig = Config & { readonly databaseUrl: string; readonly redisUrl: string };

/** How outbound messages move through their workflow. Passed to each workflow as its input. */
export type MessagePolicyConfig = Config["messages"];

type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/** The process's environment: read here and nowhere else. */
const processEnvironment = (): Env => process.env;

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Reads and validates the configuration from `env` (the process environment by default). */
export function loadConfig(env: Env = processEnvironment()): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = String(issue?.path[0] ?? "");
    const field = environment[name as keyof typeof environment] as z.ZodType | undefined;
    if (issue?.code === "custom" && issue.message !== "Invalid input") throw new ConfigError(issue.message);
    throw new ConfigError(`${name} ${field?.description ?? "is not valid"}, not "${env[name] ?? ""}"`);
  }
  return deepFreeze(parsed.data);
}
