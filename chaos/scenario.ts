// One chaos scenario: the suite's own PostgreSQL, Redis and Temporal, one or two smsgw processes,
// three simulated phones on the gRPC stream that log every command they get and every SMS they send,
// a REST burst, one failure injected mid-burst, then the checks, for every message answered 202.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGrpcTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { freePort } from "../src/shared/ports.js";
import { defaultBehaviour, SimulatedGateway } from "../src/simulator/simulated-gateway.js";
import { defaultSmsGateBehaviour, SmsGatePhone } from "../src/simulator/smsgate-phone.js";
import {
  type ChaosTemporal,
  OwnPostgres,
  OwnRedis,
  OwnTemporal,
  OwnTemporalServer,
  ServerProcess,
  smsgwCli,
  wait,
} from "./stack.js";

/** The failures the suite injects. */
export const scenarioNames = [
  "kill-9",
  "kill-9-one-of-two",
  "temporal-down",
  "postgres-down",
  "redis-down",
  "temporal-restart",
  "temporal-postgres-down",
] as const;
export type ScenarioName = (typeof scenarioNames)[number];
/** Scenarios only Temporal's own server has (`--cluster`): it restarts as a service, and has a PostgreSQL of its own. */
export const clusterOnly: readonly ScenarioName[] = ["temporal-restart", "temporal-postgres-down"];

/** What a scenario found. Every count but `accepted`, `delivered` and the times must be zero. */
export interface ScenarioResult {
  name: ScenarioName;
  /** What was injected, in words. */
  failure: string;
  /** Distinct sends (each with its own idempotency key). */
  sends: number;
  /** HTTP requests made for them (a send that got no answer or a 503 is sent again). */
  requests: number;
  /** Sends that needed more than one request. */
  retried: number;
  /** Sends answered 202 in the end. */
  accepted: number;
  /** Accepted sends that came back as another send's message. */
  mixedUp: number;
  /** Accepted messages not yet final when the failure was injected. */
  inFlight: number;
  delivered: number;
  failed: number;
  /** Accepted messages not final when the wait ran out. */
  stuck: number;
  /** SMS handed to the radio by two phones (the person got it twice). */
  sentTwice: number;
  /** Given to another phone after a phone had acknowledged it (its receipt said "yours"). */
  givenToAnother: number;
  /** Given again to the same phone after its acknowledgement had been recorded. */
  repeatedAfterAck: number;
  /** A phone reported it delivered (and got the receipt) but the message is not `delivered`. */
  reportedNotRecorded: number;
  /** `sms_sent` / `sms_delivered` events, or gateway send counters, that do not match the messages. */
  miscounted: number;
  /** Answers 500–599 other than 503. */
  serverErrors: number;
  /** 503 answers (the outage answered as an outage), each with Retry-After and {"error"}. */
  unavailable: number;
  /** 503 answers without Retry-After or without an {"error"} body. */
  badUnavailable: number;
  /** Requests that got no answer at all (the process was dead). */
  noAnswer: number;
  /** Phone frames still waiting for the server's receipt at the end. */
  unanswered: number;
  /** From the service's return to the first 202 after it, ms. */
  firstAcceptMs: number | null;
  /** From the service's return until every accepted message was final, ms. */
  recoveryMs: number | null;
  seconds: number;
  logs: string;
}

export interface ScenarioOptions {
  messages?: number;
  ratePerSecond?: number;
  /** When the failure is injected, after the burst began. */
  injectAfterMs?: number;
  /** How long the wait for every accepted message to end may take after the burst. */
  settleTimeoutMs?: number;
  keepLogs?: boolean;
  /**
   * Phones that send at once on a command instead of waiting for the receipt of their
   * acknowledgement, as apps written before receipts do (CHAOS_PHONES=legacy): at-least-once.
   */
  legacyPhones?: boolean;
  /**
   * Phones speaking the SMSGate app's protocol beside the stream phones (events stream, fetch, full
   * snapshots, reports sent again until answered, every instance's address tried in turn).
   */
  smsGatePhones?: number;
  /** Temporal's own server (4 services on a PostgreSQL of their own) instead of the dev server. */
  cluster?: boolean;
  log?: (line: string) => void;
}

/** The servers' settings: short timeouts so that a run takes minutes, not hours; all documented. */
const serverSettings: Record<string, string> = {
  LOG_LEVEL: "info",
  MESSAGE_DISPATCH_TIMEOUT_MS: "10000",
  MESSAGE_PUSH_TIMEOUT_MS: "3000",
  MESSAGE_RETRY_INITIAL_MS: "500",
  MESSAGE_RETRY_MAX_MS: "2000",
  MESSAGE_NO_GATEWAY_RECHECK_MS: "2000",
  DEVICE_PING_INTERVAL_SECONDS: "2",
  DEVICE_IDLE_TIMEOUT_SECONDS: "10",
  RATE_LIMIT_REQUESTS: "1000000",
  RATE_LIMIT_ANONYMOUS_REQUESTS: "1000000",
  GATEWAY_SENDS_PER_MINUTE: "100000",
  SHUTDOWN_TIMEOUT_MS: "2000",
  SECRET_KEY_BASE: "chaos-suite-only-not-a-secret-0123456789abcdef0123456789abcdef",
};

interface Answer {
  status: number;
  id?: string;
  at: number;
  retryAfter?: string | null;
  error?: unknown;
}

const final = ["delivered", "failed", "expired", "cancelled"];

/** How long a simulated phone takes from the receipt of its acknowledgement to its reports. */
export const phoneLatencyMs = 300;

/** Runs one scenario from scratch and tears everything down; the result says what held. */
export async function runScenario(name: ScenarioName, options: ScenarioOptions = {}): Promise<ScenarioResult> {
  const log = options.log ?? (() => undefined);
  const messages = options.messages ?? 500;
  const rate = options.ratePerSecond ?? 50;
  const injectAfterMs = options.injectAfterMs ?? 4000;
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), `smsgw-chaos-${name}-`));
  // The PostgreSQL programs run as `postgres` and must reach their directory inside this one.
  chmodSync(dir, 0o755);
  log(`${name}: services in ${dir}`);
  const postgres = await OwnPostgres.create(join(dir, "postgres"));
  const redis = await OwnRedis.create();
  if (clusterOnly.includes(name) && options.cluster !== true) throw new Error(`${name} needs --cluster`);
  const temporal: ChaosTemporal =
    options.cluster === true
      ? await OwnTemporalServer.create(join(dir, "temporal-server"))
      : await OwnTemporal.create(join(dir, "temporal"));
  log(`${name}: Temporal is ${temporal.kind} at ${temporal.address}`);
  const env = {
    ...serverSettings,
    DATABASE_URL: postgres.url,
    REDIS_URL: redis.url,
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_TASK_QUEUE: `chaos-${name}`,
    DATA_DIR: join(dir, "data"),
  };
  smsgwCli(["migrate"], env);
  const key = smsgwCli(["keys", "create", "--kind", "client", "--name", "chaos"], env).trim().split("\n")[0] ?? "";
  const instances = name === "kill-9-one-of-two" ? 2 : 1;
  const servers: ServerProcess[] = [];
  for (let i = 0; i < instances; i++) {
    servers.push(new ServerProcess(`server-${String.fromCharCode(97 + i)}`, await freePort(), env, dir));
  }
  for (const server of servers) await server.start();
  const db = new pg.Pool({ connectionString: postgres.url, max: 2 });
  db.on("error", () => undefined);

  // Three phones; with two instances they split between them, each trying the other when its own is gone.
  const phones: { deviceId: string; unansweredCount: number; disconnect(): Promise<void> }[] = [];
  const commandsAt = new Map<string, Map<string, number[]>>();
  const sentAt = new Map<string, Map<string, number>>();
  /** When the server recorded an SMSGate phone's acknowledgement (its first report past Pending). */
  const ackedAt = new Map<string, Map<string, number>>();
  for (let i = 0; i < 3; i++) {
    const home = servers[i % servers.length] as ServerProcess;
    const order = [home, ...servers.filter((server) => server !== home)];
    const registered = (await (
      await fetch(`${home.url}/api/v1/gateway/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ device_id: `chaos-phone-${i + 1}`, name: `Chaos phone ${i + 1}` }),
      })
    ).json()) as { api_key: string; device_id: string };
    const phone = new SimulatedGateway(
      order.map((server) => createGrpcTransport({ baseUrl: server.url })),
      registered.api_key,
      registered.device_id,
      // A few hundred milliseconds between taking a command and reporting it, so that a failure
      // always finds messages that phones hold, acknowledged and not yet reported.
      {
        ...defaultBehaviour,
        sendLatencyMs: phoneLatencyMs,
        resendMs: 1000,
        awaitReceipt: options.legacyPhones !== true,
      },
    );
    const commands = new Map<string, number[]>();
    const sent = new Map<string, number>();
    commandsAt.set(phone.deviceId, commands);
    sentAt.set(phone.deviceId, sent);
    phone.onCommand((command) =>
      commands.set(command.messageId, [...(commands.get(command.messageId) ?? []), Date.now()]),
    );
    phone.onSend((messageId) => sent.set(messageId, Date.now()));
    await phone.connect();
    phones.push(phone);
  }

  // Phones running the SMSGate app, registered with a registration token, each on its own home instance.
  const registration = smsgwCli(["keys", "create", "--kind", "registration", "--name", "chaos"], env).trim();
  for (let i = 0; i < (options.smsGatePhones ?? 0); i++) {
    const home = servers[i % servers.length] as ServerProcess;
    const order = [home, ...servers.filter((server) => server !== home)];
    const phone = new SmsGatePhone(
      order.map((server) => `${server.url}/api/mobile/v1`),
      registration,
      { ...defaultSmsGateBehaviour, sendLatencyMs: phoneLatencyMs, retryMs: 1000, pollMs: 2000 },
      `Chaos SMSGate ${i + 1}`,
    );
    await phone.start();
    const deviceId = phone.deviceId ?? "";
    const commands = new Map<string, number[]>();
    const sent = new Map<string, number>();
    commandsAt.set(deviceId, commands);
    sentAt.set(deviceId, sent);
    // A fetch counts from when it was asked for: one answered after the acknowledgement was recorded
    // may have read the message before it.
    phone.onFetch((messageId, requestedAt) =>
      commands.set(messageId, [...(commands.get(messageId) ?? []), requestedAt]),
    );
    phone.onSend((messageId) => sent.set(messageId, Date.now()));
    const acked = new Map<string, number>();
    ackedAt.set(deviceId, acked);
    phone.onAcknowledged((messageId) => acked.set(messageId, Date.now()));
    phones.push({
      deviceId,
      get unansweredCount() {
        return phone.unansweredCount;
      },
      disconnect: async () => phone.stop(),
    });
  }

  // The burst: `rate` sends a second through the instances in turn, each with its own idempotency
  // key, by a client that does what the API asks of one: a send that got no answer (the process
  // died) or a 503 is sent again, after its Retry-After, to the next instance; the idempotency key
  // makes a send the server stored before it died come back as the same message.
  const answers: Answer[] = [];
  const outcomes: (string | undefined)[] = [];
  const retried = new Set<number>();
  const burst = (async () => {
    const inFlight: Promise<void>[] = [];
    for (let i = 0; i < messages; i++) {
      inFlight.push(
        (async () => {
          const giveUpAt = Date.now() + 120_000;
          for (let tries = 0; Date.now() < giveUpAt; tries++) {
            if (tries > 0) retried.add(i);
            const server = servers[(i + tries) % servers.length] as ServerProcess;
            let answer: Answer;
            try {
              const response = await fetch(`${server.url}/api/v1/sms/send`, {
                method: "POST",
                headers: {
                  authorization: `Bearer ${key}`,
                  "content-type": "application/json",
                  "idempotency-key": `chaos-${i}`,
                },
                body: JSON.stringify({ to: `+1415555${String(1000 + i).padStart(4, "0")}`, message: `chaos ${i}` }),
                signal: AbortSignal.timeout(30_000),
              });
              const body = (await response.json().catch(() => undefined)) as { message_id?: string; error?: unknown };
              answer = {
                status: response.status,
                at: Date.now(),
                retryAfter: response.headers.get("retry-after"),
                error: body?.error,
                ...(body?.message_id === undefined ? {} : { id: body.message_id }),
              };
            } catch {
              answer = { status: 0, at: Date.now() };
            }
            answers.push(answer);
            if (answer.status === 202) {
              outcomes[i] = answer.id;
              return;
            }
            if (answer.status !== 0 && answer.status !== 503) return;
            await wait(answer.status === 503 ? Math.min(2000, Number(answer.retryAfter ?? 1) * 1000) : 500);
          }
        })(),
      );
      await wait(1000 / rate);
    }
    await Promise.all(inFlight);
  })();

  await wait(injectAfterMs);
  const failedAt = Date.now();
  const failure = await inject(name, { servers, temporal, postgres, redis, log });
  const restoredAt = Date.now();
  await burst;
  log(`${name}: burst done; waiting for every accepted message to end`);

  const accepted = answers.filter((answer) => answer.status === 202 && answer.id !== undefined);
  const ids = [...new Set(accepted.map((answer) => answer.id as string))];
  const deadline = Date.now() + (options.settleTimeoutMs ?? 180_000);
  let rows: { id: string; status: string; created: number; ended: number | null; sent: boolean }[] = [];
  for (;;) {
    rows = (
      await db.query<{ id: string; status: string; created: string; ended: string | null; sent: boolean }>(
        `select id, status, extract(epoch from created_at) * 1000 as created,
                extract(epoch from coalesce(delivered_at, failed_at, expired_at, cancelled_at)) * 1000 as ended,
                sent_at is not null as sent
           from messages where id = any($1)`,
        [ids],
      )
    ).rows.map((row) => ({
      ...row,
      created: Number(row.created),
      ended: row.ended === null ? null : Number(row.ended),
    }));
    const open = rows.filter((row) => !final.includes(row.status)).length + (ids.length - rows.length);
    if (open === 0 || Date.now() > deadline) break;
    await wait(500);
  }
  // The phones' last reports get their receipts.
  for (let i = 0; i < 20 && phones.some((phone) => phone.unansweredCount > 0); i++) await wait(250);

  const byId = new Map(rows.map((row) => [row.id, row]));
  let sentTwice = 0;
  let givenToAnother = 0;
  let repeatedAfterAck = 0;
  let reportedNotRecorded = 0;
  const suspects = new Set<string>();
  for (const id of ids) {
    const senders = phones.filter((phone) => sentAt.get(phone.deviceId)?.has(id));
    if (senders.length > 1) {
      sentTwice++;
      suspects.add(id);
    }
    const firstSend = Math.min(
      ...senders.map((phone) => sentAt.get(phone.deviceId)?.get(id) ?? Number.POSITIVE_INFINITY),
    );
    const firstSender = senders.find((phone) => sentAt.get(phone.deviceId)?.get(id) === firstSend);
    for (const phone of phones) {
      const times = commandsAt.get(phone.deviceId)?.get(id) ?? [];
      if (phone !== firstSender && times.some((time) => time > firstSend)) {
        givenToAnother++;
        suspects.add(id);
      }
      // A stream phone sends on the receipt of its acknowledgement; an SMSGate phone sends what it
      // fetches, and holds it once its report is recorded: it may fetch it again until then.
      const mine = ackedAt.get(phone.deviceId)?.get(id) ?? sentAt.get(phone.deviceId)?.get(id);
      if (mine !== undefined && times.some((time) => time > mine)) {
        repeatedAfterAck++;
        suspects.add(id);
      }
    }
    if (senders.length > 0 && byId.get(id)?.status !== "delivered") {
      reportedNotRecorded++;
      suspects.add(id);
    }
  }
  // What each phone saw of the messages that broke a promise, and their recorded attempts.
  if (suspects.size > 0) {
    const attempts = await db.query(
      `select message_id, attempt, gateway_id, outcome, error, dispatched_at, acked_at, ended_at
         from message_attempts where message_id = any($1) order by message_id, attempt`,
      [[...suspects]],
    );
    const seen = [...suspects].map((id) => ({
      id,
      phones: phones.map((phone) => ({
        phone: phone.deviceId,
        commands: commandsAt.get(phone.deviceId)?.get(id) ?? [],
        sent: sentAt.get(phone.deviceId)?.get(id) ?? null,
      })),
      attempts: attempts.rows.filter((row: { message_id: string }) => row.message_id === id),
    }));
    writeFileSync(join(dir, "suspects.json"), JSON.stringify({ failedAt, restoredAt, seen }, null, 2));
  }
  const events = (
    await db.query<{ type: string; count: number }>(
      "select type, count(*)::int as count from events where message_id = any($1) group by type",
      [ids],
    )
  ).rows;
  const eventCount = (type: string) => events.find((event) => event.type === type)?.count ?? 0;
  const sentCount = rows.filter((row) => row.sent).length;
  const deliveredCount = rows.filter((row) => row.status === "delivered").length;
  const counters = (
    await db.query<{ total: number }>("select coalesce(sum(total_messages_sent), 0)::int as total from gateways")
  ).rows[0]?.total;
  const miscounted =
    Math.abs(eventCount("sms_sent") - sentCount) +
    Math.abs(eventCount("sms_delivered") - deliveredCount) +
    Math.abs((counters ?? 0) - sentCount);
  const unavailable = answers.filter((answer) => answer.status === 503);
  const unique = new Set(outcomes.filter((id) => id !== undefined)).size;
  const afterRestore = accepted.filter((answer) => answer.at >= restoredAt);
  const endedTimes = rows.map((row) => row.ended).filter((time): time is number => time !== null);
  const stuck = ids.length - rows.filter((row) => final.includes(row.status)).length;

  const result: ScenarioResult = {
    name,
    failure,
    sends: messages,
    requests: answers.length,
    retried: retried.size,
    accepted: outcomes.filter((id) => id !== undefined).length,
    // Two sends with different idempotency keys never come back as one message, nor one key as two.
    mixedUp: outcomes.filter((id) => id !== undefined).length - unique,
    inFlight: rows.filter((row) => row.created < failedAt && (row.ended === null || row.ended > failedAt)).length,
    delivered: deliveredCount,
    failed: rows.filter((row) => row.status === "failed").length,
    stuck,
    sentTwice,
    givenToAnother,
    repeatedAfterAck,
    reportedNotRecorded,
    miscounted,
    serverErrors: answers.filter((answer) => answer.status >= 500 && answer.status !== 503).length,
    unavailable: unavailable.length,
    badUnavailable: unavailable.filter((answer) => answer.retryAfter === null || typeof answer.error !== "string")
      .length,
    noAnswer: answers.filter((answer) => answer.status === 0).length,
    unanswered: phones.reduce((sum, phone) => sum + phone.unansweredCount, 0),
    firstAcceptMs: afterRestore.length === 0 ? null : Math.min(...afterRestore.map((answer) => answer.at)) - restoredAt,
    recoveryMs: stuck > 0 || endedTimes.length === 0 ? null : Math.max(0, Math.max(...endedTimes) - restoredAt),
    seconds: Math.round((Date.now() - started) / 1000),
    logs: dir,
  };

  await Promise.all(phones.map((phone) => phone.disconnect()));
  await db.end();
  for (const server of servers) await server.stop();
  await temporal.destroy();
  await redis.stop();
  await postgres.destroy();
  const clean = violations(result).length === 0 && options.keepLogs !== true;
  if (clean) rmSync(dir, { recursive: true, force: true });
  return result;
}

/** Injects the scenario's failure and restores the service; returns what was done, in words. */
async function inject(
  name: ScenarioName,
  stack: {
    servers: ServerProcess[];
    temporal: ChaosTemporal;
    postgres: OwnPostgres;
    redis: OwnRedis;
    log: (line: string) => void;
  },
): Promise<string> {
  const { servers, temporal, postgres, redis, log } = stack;
  const [first] = servers;
  if (first === undefined) throw new Error("no server");
  const downFor = async (stop: () => Promise<void>, start: () => Promise<void>, ms: number) => {
    await stop();
    await wait(ms);
    await start();
  };
  const failures: Record<ScenarioName, [string, () => Promise<void>]> = {
    "kill-9": [
      "kill -9 of the server (API + worker), restarted 8 s later",
      () =>
        downFor(
          () => first.kill(),
          () => first.start(),
          8000,
        ),
    ],
    "kill-9-one-of-two": [
      "kill -9 of one of two instances (not restarted); its phones reconnect to the other",
      () => first.kill(),
    ],
    "temporal-down": [
      temporal instanceof OwnTemporalServer
        ? "Temporal's server killed (kill -9 of its four services), started again 20 s later"
        : "Temporal dev server killed (kill -9), started again 20 s later on the same database file",
      () =>
        downFor(
          () => temporal.kill(),
          () => temporal.start(),
          20_000,
        ),
    ],
    "postgres-down": [
      "PostgreSQL stopped (fast shutdown) for 15 s",
      () =>
        downFor(
          () => postgres.stop(),
          () => postgres.start(),
          15_000,
        ),
    ],
    "temporal-restart": [
      "Temporal's server restarted (SIGTERM to its four services, started again at once), as for an upgrade",
      async () => {
        await temporal.stop();
        await temporal.start();
      },
    ],
    "temporal-postgres-down": [
      "Temporal's own PostgreSQL stopped (fast shutdown) for 15 s; smsgw's stays up",
      () => {
        if (!(temporal instanceof OwnTemporalServer)) throw new Error("temporal-postgres-down needs --cluster");
        return downFor(
          () => temporal.postgres.stop(),
          () => temporal.postgres.start(),
          15_000,
        );
      },
    ],
    "redis-down": [
      "Redis killed for 10 s, started again empty",
      () =>
        downFor(
          () => redis.stop(),
          () => redis.start(),
          10_000,
        ),
    ],
  };
  const [says, run] = failures[name];
  log(`${name}: ${says}`);
  await run();
  return says;
}

/** What a result breaks of the promises: empty when everything held. */
export function violations(result: ScenarioResult): string[] {
  const broken: string[] = [];
  const zero: (keyof ScenarioResult)[] = [
    "stuck",
    "mixedUp",
    "sentTwice",
    "givenToAnother",
    "repeatedAfterAck",
    "reportedNotRecorded",
    "miscounted",
    "serverErrors",
    "badUnavailable",
    "unanswered",
  ];
  for (const field of zero) if (result[field] !== 0) broken.push(`${field} = ${String(result[field])}`);
  if (result.accepted !== result.sends) broken.push(`${result.sends - result.accepted} sends never accepted`);
  return broken;
}
