import { randomUUID } from "node:crypto";
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { pino } from "pino";
import { inject } from "vitest";
import { type Config, loadConfig } from "../src/config.js";
import type { KeyScope } from "../src/modules/keys/index.js";
import { type Running, serve } from "../src/serve.js";
import { defaultBehaviour, SimulatedGateway, type SimulatorBehaviour } from "../src/simulator/simulated-gateway.js";

/** A configuration for tests: the test database, Redis and Temporal, an ephemeral port. */
export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    HOST: "127.0.0.1",
    PORT: "0",
    DATABASE_URL: inject("databaseUrl"),
    REDIS_URL: inject("redisUrl"),
    TEMPORAL_ADDRESS: inject("temporalAddress"),
    LOG_LEVEL: "silent",
    // Tests make many calls with few keys; rate-limit tests lower these.
    RATE_LIMIT_REQUESTS: "100000",
    RATE_LIMIT_ANONYMOUS_REQUESTS: "100000",
    AUTH_FAILURES_PER_MINUTE: "100000",
    ...env,
  });
}

/** Short timeouts so that failover and retries happen within a test. */
export const fastMessages: Record<string, string> = {
  MESSAGE_RETRY_INITIAL_MS: "200",
  MESSAGE_RETRY_MAX_MS: "1000",
  MESSAGE_DISPATCH_TIMEOUT_MS: "4000",
  MESSAGE_PUSH_TIMEOUT_MS: "2000",
  MESSAGE_NO_GATEWAY_RECHECK_MS: "1000",
  DEVICE_PING_INTERVAL_SECONDS: "1",
  DEVICE_IDLE_TIMEOUT_SECONDS: "6",
  GATEWAY_FAILURE_COOLDOWN_SECONDS: "30",
};

/**
 * A running API on an ephemeral port; with `worker`, also a Temporal worker on its own task queue
 * (unless TEMPORAL_TASK_QUEUE is given), without the maintenance schedules.
 */
export async function startServer(
  env: Record<string, string> = {},
  options: { worker?: boolean } = {},
): Promise<Running & { url: string }> {
  const config = testConfig({ TEMPORAL_TASK_QUEUE: unique("test-queue"), ...env });
  const running = await serve(config, pino({ level: config.logLevel }), {
    api: true,
    worker: options.worker ?? false,
    schedules: false,
    workflowBundle: { code: inject("workflowBundleCode") },
  });
  if (running.url === undefined) throw new Error("the API did not start");
  return { ...running, url: running.url };
}

/** A unique name for data a test owns. */
export function unique(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** A new client key of `scope` (`client` or `admin`). */
export async function clientKey(server: Running, scope: Exclude<KeyScope, "gateway"> = "client"): Promise<string> {
  return (await server.deps.keys.create({ scope, name: unique(scope) })).key;
}

/** Registers a gateway directly through the service; returns its id, device id and key. */
export async function registeredGateway(server: Running): Promise<{ id: number; deviceId: string; key: string }> {
  const { gateway, apiKey } = await server.deps.gateways.register({ deviceId: unique("device"), name: "Test phone" });
  return { id: gateway.id, deviceId: gateway.deviceId, key: apiKey };
}

/** Calls a REST path with an optional key and JSON body; returns the status, headers and parsed body. */
export async function rest(
  server: { url: string },
  method: string,
  path: string,
  options: { key?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; body: unknown }> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.key !== undefined) headers.authorization = `Bearer ${options.key}`;
  let body: string | undefined = options.rawBody;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers["content-type"] ??= "application/json";
  }
  const response = await fetch(`${server.url}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: the test sees the text.
  }
  return { status: response.status, headers: response.headers, body: parsed };
}

/** The three RPC doors, as clients of one service. */
export function doors<S extends DescService>(server: { url: string }, service: S) {
  return {
    grpc: createClient(service, createGrpcTransport({ baseUrl: server.url })),
    connect: createClient(service, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" })),
    connectH2: createClient(service, createConnectTransport({ baseUrl: server.url, httpVersion: "2" })),
    grpcWeb: createClient(service, createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1" })),
  } satisfies Record<string, Client<S>>;
}

/** Call options carrying a key. */
export function withKey(key: string) {
  return { headers: { authorization: `Bearer ${key}` } };
}

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs = 20_000,
  what = "a condition",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A message's status as the REST API answers it (`GET /api/v1/sms/status/{id}`). */
export async function messageStatus(server: { url: string }, key: string, messageId: string) {
  return (await rest(server, "GET", `/api/v1/sms/status/${messageId}`, { key })).body as Record<string, unknown>;
}

/** Waits until a message has `status`; returns its status answer. */
export function untilStatus(
  server: { url: string },
  key: string,
  messageId: string,
  status: string,
  timeoutMs = 20_000,
) {
  return eventually(
    async () => {
      const current = await messageStatus(server, key, messageId);
      return current.status === status ? current : undefined;
    },
    timeoutMs,
    `${messageId} to be ${status}`,
  );
}

/** A registered gateway with a simulated phone connected over the real stream. */
export async function simulatedGateway(
  server: { url: string; deps: Running["deps"] },
  behaviour: Partial<SimulatorBehaviour> = {},
): Promise<SimulatedGateway & { id: number }> {
  const { id, deviceId, key } = await registeredGateway(server as Running);
  const phone = new SimulatedGateway(createGrpcTransport({ baseUrl: server.url }), key, deviceId, {
    ...defaultBehaviour,
    ...behaviour,
  });
  await phone.connect();
  return Object.assign(phone, { id });
}

/**
 * Leaves no gateway that may be given messages and no message waiting from an earlier test, so
 * that the next test's phones see only its own messages.
 */
export async function isolate(server: { deps: Running["deps"] }): Promise<void> {
  const sql = server.deps.orm.em.getConnection();
  await sql.execute("update gateways set active = false");
  await sql.execute(
    "update messages set status = 'cancelled', cancelled_at = now() where status in ('queued', 'dispatched')",
  );
}

/** The environment for an `smsgw` child process against the test services. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: inject("databaseUrl"),
    REDIS_URL: inject("redisUrl"),
    TEMPORAL_ADDRESS: inject("temporalAddress"),
    LOG_LEVEL: "warn",
    // The same generous limits as testConfig: every test counts against the same Redis.
    RATE_LIMIT_REQUESTS: "100000",
    RATE_LIMIT_ANONYMOUS_REQUESTS: "100000",
    AUTH_FAILURES_PER_MINUTE: "100000",
    ...extra,
  };
}

export { freePort } from "../src/shared/ports.js";

/** Waits until `GET /up` answers 200 at `url`. */
export async function untilUp(url: string, timeoutMs = 30_000): Promise<void> {
  const status = () =>
    fetch(`${url}/up`).then(
      (response) => response.status,
      () => 0,
    );
  await eventually(async () => ((await status()) === 200 ? true : undefined), timeoutMs, `${url} to come up`);
}

/** Simulated phones a test file connects, to be disconnected after each test. */
export function phoneRack(server: () => { url: string; deps: Running["deps"] }) {
  const connected: SimulatedGateway[] = [];
  return {
    /** Registers and connects one more phone. */
    async connect(behaviour: Partial<SimulatorBehaviour> = {}) {
      const phone = await simulatedGateway(server(), behaviour);
      connected.push(phone);
      return phone;
    },
    async disconnectAll(): Promise<void> {
      await Promise.all(connected.splice(0).map((phone) => phone.disconnect()));
    },
  };
}
