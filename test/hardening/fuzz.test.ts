import { createHash } from "node:crypto";
import { type DescField, type DescMethod, getOption } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { http } from "../../gen/google/api/annotations_pb.js";
import { services } from "../../src/rpc/routes.js";
import { clientKey, registeredGateway, startServer } from "../helpers.js";

/**
 * A bounded fuzz of every door with a fixed seed: for every REST route and every Connect procedure,
 * malformed requests with each kind of key; on /cable, bad frames; on the SMSGate mobile API, bad
 * bodies, schemes and signatures. Nothing may earn a 5xx, every REST
 * error is `{"error": ...}`, and `/up` answers 200 after each route.
 */
const seed = 20261125;
const requestsPerRoute = 60;

/** mulberry32: a small seeded generator, so that a failure can be replayed exactly. */
function generator(start: number) {
  let state = start >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;
  return { next, int, pick };
}
type Random = ReturnType<typeof generator>;

const strings = [
  "",
  " ",
  "a\u0000b",
  "\u0000",
  "lone \ud800 surrogate",
  "\udc00",
  "x".repeat(10_000),
  "😀".repeat(500),
  "\u202eRTL\u202c",
  "e\u0301\u0301\u0301",
  "+14155550000",
  "+1415555000000000000000",
  "../../etc/passwd",
  "'; drop table messages; --",
  "%00%ZZ",
  '{"a":1}',
  "api_live_",
  "msg_",
  "<script>alert(1)</script>",
];
const numbers = [0, -1, 1.5, -2147483649, 2147483648, Number.MAX_SAFE_INTEGER + 2, 1e308, -1e308, Number.MIN_VALUE];

/** A value of the wrong (or sometimes the right) JSON type. */
function jsonValue(random: Random, depth = 0): unknown {
  switch (random.int(depth > 3 ? 5 : 8)) {
    case 0:
      return random.pick(strings);
    case 1:
      return random.pick(numbers);
    case 2:
      return random.pick([true, false, null]);
    case 3:
      return String(random.pick(numbers));
    case 4:
      return new Date(random.int(2 ** 42)).toISOString();
    case 5:
      return Array.from({ length: random.int(4) }, () => jsonValue(random, depth + 1));
    case 6: {
      // Deeply nested.
      let value: unknown = "deep";
      for (let i = 0; i < 60; i++) value = { a: value };
      return value;
    }
    default:
      return Object.fromEntries(
        Array.from({ length: random.int(4) }, () => [random.pick(strings).slice(0, 20), jsonValue(random, depth + 1)]),
      );
  }
}

/** A request object for `method`: its own field names with bad values, and unknown fields. */
function requestObject(random: Random, method: DescMethod): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (const field of method.input.fields as readonly DescField[]) {
    if (random.next() < 0.7) object[random.next() < 0.8 ? field.name : field.jsonName] = jsonValue(random);
  }
  if (random.next() < 0.2) object[random.pick(strings).slice(0, 30)] = jsonValue(random);
  return object;
}

const invalidUtf8 = Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x7d]);

/** A body that is not the JSON object asked for, or is one with bad values. */
function body(
  random: Random,
  method: DescMethod,
): { body: string | Buffer | undefined; contentType: string | undefined } {
  const contentType = random.pick([
    "application/json",
    "application/json",
    "application/x-www-form-urlencoded",
    "text/plain",
    "application/proto",
    "multipart/form-data; boundary=x",
    undefined,
  ]);
  switch (random.int(8)) {
    case 0:
      return { body: undefined, contentType };
    case 1:
      return { body: "", contentType };
    case 2:
      return { body: invalidUtf8, contentType };
    case 3:
      return { body: Buffer.from(Array.from({ length: 1 + random.int(64) }, () => random.int(256))), contentType };
    case 4:
      return { body: JSON.stringify(jsonValue(random)), contentType };
    case 5:
      return { body: '{"to": 1e400, "message": ', contentType };
    default:
      return { body: JSON.stringify(requestObject(random, method)), contentType };
  }
}

/** A path parameter: bad text, URL-encoded or not (a raw `%ZZ` is a malformed URL). */
function pathValue(random: Random): string {
  const value = random.pick([...strings, String(random.pick(numbers)), "%ZZ", "%E0%A4%A", "a".repeat(2000)]);
  if (value.startsWith("%")) return value;
  try {
    return encodeURIComponent(value);
  } catch {
    // A lone surrogate has no UTF-8: send the bytes it would have had, which do not decode.
    return "lone%ED%A0%80surrogate";
  }
}

interface Route {
  verb: string;
  template: string;
  method: DescMethod;
}

function restRoutes(): Route[] {
  const routes: Route[] = [];
  for (const service of services) {
    for (const method of service.methods) {
      const rule = getOption(method, http);
      const pattern = rule.pattern;
      if (pattern.case === undefined || pattern.case === "custom") continue;
      routes.push({ verb: pattern.case.toUpperCase(), template: pattern.value as string, method });
    }
  }
  return routes;
}

let server: Awaited<ReturnType<typeof startServer>>;
let keys: (string | undefined)[];
let registrationToken: string;

beforeAll(async () => {
  server = await startServer();
  const gateway = await registeredGateway(server);
  keys = [
    undefined,
    `api_live_${"z".repeat(40)}`,
    gateway.key,
    await clientKey(server),
    await clientKey(server, "admin"),
  ];
  registrationToken = (await server.deps.keys.create({ scope: "registration", name: "fuzz" })).key;
});
afterAll(async () => server.stop());

async function expectUp(): Promise<void> {
  expect((await fetch(`${server.url}/up`)).status).toBe(200);
}

describe(`bounded fuzz (seed ${seed})`, () => {
  it('never answers a REST route with a 5xx, and every error is {"error": ...}', async () => {
    const random = generator(seed);
    const routes = restRoutes();
    expect(routes.length).toBeGreaterThan(15);
    for (const route of routes) {
      for (let i = 0; i < requestsPerRoute; i++) {
        const key = keys[i % keys.length];
        let path = route.template.replace(/\{[a-z_]+\}/g, () => pathValue(random));
        if (random.next() < 0.3)
          path += `?${random.pick(["limit", "page", "since", "phone_number", "x"])}=${pathValue(random)}`;
        const { body: payload, contentType } =
          route.verb === "GET" ? { body: undefined, contentType: undefined } : body(random, route.method);
        const headers: Record<string, string> = {};
        if (contentType !== undefined) headers["content-type"] = contentType;
        if (key !== undefined) headers.authorization = `Bearer ${key}`;
        if (random.next() < 0.1)
          headers["idempotency-key"] = random
            .pick(strings)
            .slice(0, 400)
            .replace(/[^\x20-\x7e]/g, "?");
        const response = await fetch(`${server.url}${path}`, { method: route.verb, headers, body: payload });
        const text = await response.text();
        const what = `${route.verb} ${path.slice(0, 120)} -> ${response.status} ${text.slice(0, 200)}`;
        expect(response.status, what).toBeLessThan(500);
        if (response.status >= 400) {
          const parsed = JSON.parse(text) as Record<string, unknown>;
          expect(Object.keys(parsed), what).toEqual(["error"]);
          expect(typeof parsed.error, what).toBe("string");
        }
      }
      await expectUp();
    }
  }, 120_000);

  it("never answers a Connect procedure with a 5xx", async () => {
    const random = generator(seed + 1);
    for (const service of services) {
      // Bidirectional streams need HTTP/2 (over HTTP/1.1 Connect answers 505): fuzzed below.
      for (const method of service.methods.filter((m) => m.methodKind !== "bidi_streaming")) {
        for (let i = 0; i < requestsPerRoute; i++) {
          const key = keys[i % keys.length];
          const headers: Record<string, string> = {};
          if (key !== undefined) headers.authorization = `Bearer ${key}`;
          let payload: string | Buffer | undefined;
          switch (random.int(4)) {
            case 0:
              headers["content-type"] = "application/proto";
              payload = Buffer.from(Array.from({ length: random.int(48) }, () => random.int(256)));
              break;
            case 1:
              headers["content-type"] = "application/json";
              payload = random.next() < 0.5 ? invalidUtf8 : JSON.stringify(jsonValue(random));
              break;
            case 2:
              headers["content-type"] = random.pick(["application/json", "application/proto"]);
              headers["content-encoding"] = random.pick(["gzip", "br", "zstd"]);
              payload = Buffer.from(Array.from({ length: random.int(48) }, () => random.int(256)));
              break;
            default:
              headers["content-type"] = "application/json";
              payload = JSON.stringify(requestObject(random, method));
          }
          const path = `/${service.typeName}/${method.name}`;
          const response = await fetch(`${server.url}${path}`, { method: "POST", headers, body: payload });
          const text = await response.text();
          const what = `${path} -> ${response.status} ${text.slice(0, 200)}`;
          // The Connect protocol answers an encoding the server does not support with unimplemented.
          if (response.status === 501) expect(text, what).toContain("unknown compression");
          else expect(response.status, what).toBeLessThan(500);
        }
        await expectUp();
      }
    }
  }, 120_000);

  it("ends a device stream fed garbage with a client error, never internal", async () => {
    const random = generator(seed + 3);
    const http2 = await import("node:http2");
    const session = http2.connect(server.url);
    const statuses: string[] = [];
    for (let i = 0; i < requestsPerRoute; i++) {
      const key = keys[i % keys.length];
      const stream = session.request({
        ":method": "POST",
        ":path": "/smsgw.v1.GatewayService/Connect",
        "content-type": random.pick(["application/grpc", "application/grpc+json", "application/connect+proto"]),
        te: "trailers",
        ...(key === undefined ? {} : { authorization: `Bearer ${key}` }),
      });
      const status = new Promise<string>((resolve) => {
        stream.on("response", (headers) => {
          if (headers["grpc-status"] !== undefined) resolve(String(headers["grpc-status"]));
          else if (Number(headers[":status"]) !== 200) resolve(`http ${headers[":status"]}`);
        });
        stream.on("trailers", (trailers) => resolve(String(trailers["grpc-status"] ?? "none")));
        stream.on("close", () => resolve("closed"));
        stream.on("error", () => resolve("reset"));
      });
      stream.on("data", () => undefined);
      const length = random.int(40);
      const garbage = Buffer.from(Array.from({ length }, () => random.int(256)));
      const envelope = Buffer.concat([
        Buffer.from([random.pick([0, 0, 1, 2, 0x80]), 0, 0, 0, random.int(60)]),
        garbage,
      ]);
      stream.end(random.next() < 0.5 ? envelope : garbage);
      statuses.push(await status);
    }
    session.close();
    // 13 is internal, 2 unknown: neither is the client's fault, so neither may be the answer.
    expect(statuses.filter((status) => status === "13" || status === "2" || status.startsWith("http 5"))).toEqual([]);
    await expectUp();
  });

  it("keeps /cable up through oversized, invalid, garbage and unknown-channel frames", async () => {
    const random = generator(seed + 2);
    const gateway = await registeredGateway(server);
    const identifier = JSON.stringify({
      channel: "GatewayChannel",
      api_key_digest: createHash("sha256").update(gateway.key).digest("hex"),
    });
    for (let round = 0; round < 10; round++) {
      const socket = new WebSocket(
        `${server.url.replace("http", "ws")}/cable?api_key=${gateway.key}`,
        "actioncable-v1-json",
      );
      socket.on("error", () => undefined);
      const closed = new Promise((resolve) => socket.once("close", resolve));
      await new Promise((resolve) => socket.once("open", resolve));
      socket.send(JSON.stringify({ command: "subscribe", identifier }));
      for (let i = 0; i < 20 && socket.readyState === WebSocket.OPEN; i++) {
        const data = JSON.stringify({
          ...requestObject(random, services[0].methods[3] as DescMethod),
          action: random.pick(["heartbeat", "delivery_report", "message_received", "ack", "nope"]),
        });
        const frame = random.pick([
          JSON.stringify({ command: "message", identifier, data }),
          JSON.stringify({ command: "message", identifier, data: jsonValue(random) }),
          JSON.stringify({
            command: random.pick(["subscribe", "unsubscribe", "x"]),
            identifier: JSON.stringify(jsonValue(random)),
          }),
          JSON.stringify(jsonValue(random)),
          random.pick(strings),
        ]);
        socket.send(frame);
      }
      if (round % 3 === 0) socket.send("x".repeat(70 * 1024));
      await new Promise((resolve) => setTimeout(resolve, 20));
      socket.close();
      await closed;
      await expectUp();
    }
  });

  it('never answers the SMSGate mobile API with a 5xx, and every error is {"message": ...}', async () => {
    const random = generator(seed + 4);
    const gateway = keys[2] ?? "";
    const routes: [string, string][] = [
      ["POST", "/device"],
      ["PATCH", "/device"],
      ["GET", "/device"],
      ["GET", "/message"],
      ["PATCH", "/message"],
      ["GET", "/messages"],
      ["PATCH", "/messages"],
      ["GET", "/webhooks"],
      ["GET", "/settings"],
      ["GET", "/user/code"],
      ["PATCH", "/user/password"],
      ["POST", "/webhooks/received"],
      ["GET", "/events"],
    ];
    const authorizations = () =>
      random.pick([
        undefined,
        `Bearer ${gateway}`,
        `Bearer ${registrationToken}`,
        `Bearer ${random
          .pick(strings)
          .slice(0, 60)
          .replace(/[^\x20-\x7e]/g, "?")}`,
        `Basic ${Buffer.from(`${random.pick(strings).slice(0, 20)}:x`).toString("base64")}`,
        "Basic %%%",
        `Code ${random.int(1_000_000)}`,
        "Token",
      ]);
    for (const prefix of ["/api/mobile/v1", "/mobile/v1"]) {
      for (const [verb, route] of routes) {
        for (let i = 0; i < requestsPerRoute / 2; i++) {
          const authorization = authorizations();
          const headers: Record<string, string> = {};
          if (authorization !== undefined) headers.authorization = authorization;
          let payload: string | Buffer | undefined;
          if (verb !== "GET") {
            const generated = random.next() < 0.5 ? body(random, services[0]?.methods[0] as DescMethod) : undefined;
            payload =
              generated?.body ??
              JSON.stringify(
                random.pick([
                  [{ id: random.pick(strings), state: random.pick(["Sent", "Pending", "x", 1]) }],
                  { name: random.pick(strings), simCards: jsonValue(random), pushToken: jsonValue(random) },
                  { id: "x", event: "sms:received", deviceId: random.pick(strings), payload: jsonValue(random) },
                  jsonValue(random),
                ]),
              );
            headers["content-type"] = generated?.contentType ?? "application/json";
            if (random.next() < 0.3) headers["x-timestamp"] = String(random.pick(numbers));
            if (random.next() < 0.3) headers["x-signature"] = random.pick(["0".repeat(64), "zz", ""]);
          }
          const query = random.next() < 0.3 ? `?order=${pathValue(random)}` : "";
          const controller = new AbortController();
          const response = await fetch(`${server.url}${prefix}${route}${query}`, {
            method: verb,
            headers,
            body: payload,
            signal: controller.signal,
          });
          const what = `${verb} ${prefix}${route}${query.slice(0, 60)} (${authorization?.slice(0, 30)}) -> ${response.status}`;
          expect(response.status, what).toBeLessThan(500);
          if (response.headers.get("content-type")?.startsWith("text/event-stream")) {
            // An events stream that opened: it is the phone's, and it ends when the phone goes.
            expect(response.status, what).toBe(200);
            controller.abort();
            continue;
          }
          const text = await response.text();
          if (response.status >= 400) {
            const parsed = JSON.parse(text) as Record<string, unknown>;
            expect(Object.keys(parsed), `${what} ${text.slice(0, 200)}`).toEqual(["message"]);
          }
        }
        await expectUp();
      }
    }
  }, 120_000);
});

// On a server of its own: the other tests use up the address's budget of failed authentications,
// and this one counts how many of its requests got past authentication.
describe(`bounded fuzz of SMSGate's third-party API (seed ${seed})`, () => {
  let apiServer: Awaited<ReturnType<typeof startServer>>;
  let account: { login: string; password: string; record: { id: number } };
  let clientKeys: string[];
  let gatewayKey: string;
  let signedTokens: { access: string; refresh: string };
  beforeAll(async () => {
    apiServer = await startServer();
    account = await apiServer.deps.keys.createAccount("fuzz");
    clientKeys = [await clientKey(apiServer), await clientKey(apiServer, "admin")];
    gatewayKey = (await registeredGateway(apiServer)).key;
    const pair = await apiServer.deps.accessTokens.issue(account.record.id, ["all:any"], 0);
    signedTokens = { access: pair.access.token, refresh: pair.refresh.token };
  });
  afterAll(async () => apiServer.stop());

  it('never answers SMSGate\'s third-party API with a 5xx, and every error is {"message", "code"}', async () => {
    const random = generator(seed + 5);
    const routes: [string, string][] = [
      ["POST", "/messages"],
      ["POST", "/message"],
      ["GET", "/messages"],
      ["GET", "/messages/{id}"],
      ["GET", "/message/{id}"],
      ["DELETE", "/messages/{id}"],
      ["DELETE", "/message/{id}"],
      ["GET", "/devices"],
      ["GET", "/device"],
      ["DELETE", "/devices/{id}"],
      ["GET", "/inbox"],
      ["POST", "/inbox/refresh"],
      ["POST", "/inbox/export"],
      ["POST", "/messages/inbox/export"],
      ["GET", "/message"],
      ["GET", "/logs"],
      ["POST", "/auth/token"],
      ["POST", "/auth/token/refresh"],
      ["DELETE", "/auth/token/{id}"],
      ["GET", "/webhooks"],
      ["POST", "/webhooks"],
      ["DELETE", "/webhooks/{id}"],
      ["GET", "/settings"],
      ["PUT", "/settings"],
      ["PATCH", "/settings"],
      ["GET", "/health"],
      ["GET", "/health/live"],
      ["GET", "/health/ready"],
    ];
    // Wrong credentials within the address's failure budget (30 a minute), so that the rest get past it.
    let wrongLeft = 25;
    const valid = () =>
      random.pick([
        `Basic ${Buffer.from(`${account.login}:${account.password}`).toString("base64")}`,
        `Bearer ${clientKeys[0]}`,
        `Bearer ${clientKeys[1]}`,
        `Bearer ${signedTokens.access}`,
      ]);
    const authorizations = () => {
      if (wrongLeft <= 0 || random.next() < 0.9) return valid();
      wrongLeft -= 1;
      return random.pick([
        undefined,
        `Bearer ${`api_live_${"z".repeat(40)}`}`,
        `Bearer ${gatewayKey}`,
        `Basic ${Buffer.from(`${random.pick(strings).slice(0, 20)}:${random.pick(strings).slice(0, 20)}`).toString("base64")}`,
        "Basic %%%",
        "Token",
        `Bearer ${signedTokens.refresh}`,
        `Bearer ${signedTokens.access.slice(0, -3)}xyz`,
        "Bearer a.b.c",
      ]);
    };
    const statuses = new Map<number, number>();
    const message = () => {
      const fields: Record<string, unknown> = {};
      const put = (field: string, value: () => unknown) => {
        if (random.next() < 0.5) fields[field] = value();
      };
      put("id", () => random.pick([random.pick(strings), "msg_x", "x".repeat(36), jsonValue(random)]));
      put("message", () => random.pick([random.pick(strings), jsonValue(random)]));
      put("textMessage", () => random.pick([{ text: random.pick(strings) }, jsonValue(random)]));
      put("dataMessage", () =>
        random.pick([
          { data: random.pick(["AQID", "", "%%", random.pick(strings)]), port: random.pick(numbers) },
          jsonValue(random),
        ]),
      );
      fields.phoneNumbers = random.pick([
        ["+14155552671"],
        [random.pick(strings)],
        ["+14155552671", "+14155552671"],
        jsonValue(random),
        Array.from({ length: random.int(120) }, () => `+1415555${String(random.int(10_000)).padStart(4, "0")}`),
      ]);
      for (const field of ["isEncrypted", "withDeliveryReport"])
        put(field, () => random.pick([true, false, jsonValue(random)]));
      for (const field of ["simNumber", "priority", "ttl"])
        put(field, () => random.pick([...numbers, 1, 100, jsonValue(random)]));
      for (const field of ["validUntil", "scheduleAt"])
        put(field, () =>
          random.pick(["2030-01-01T00:00:00Z", "2000-01-01T00:00:00Z", random.pick(strings), jsonValue(random)]),
        );
      put("deviceId", () => random.pick([random.pick(strings), jsonValue(random)]));
      return fields;
    };
    /** A body of the other routes: a token request, an export, a webhook or settings, each of wrong parts. */
    const other = () =>
      random.pick([
        {
          ttl: random.pick([...numbers, 60, jsonValue(random)]),
          scopes: random.pick([["messages:send"], [], jsonValue(random)]),
        },
        {
          since: random.pick(["2030-01-01T00:00:00Z", random.pick(strings), jsonValue(random)]),
          until: random.pick(["2031-01-01T00:00:00Z", random.pick(strings), jsonValue(random)]),
          messageTypes: random.pick([["SMS"], ["MMS", "SMS"], jsonValue(random)]),
          webhookDelivery: random.pick(["Batch", "Disabled", jsonValue(random)]),
          triggerWebhooks: jsonValue(random),
          deviceId: random.pick([random.pick(strings), jsonValue(random)]),
        },
        {
          id: random.pick([random.pick(strings), jsonValue(random)]),
          url: random.pick(["https://example.com/hook", random.pick(strings), jsonValue(random)]),
          event: random.pick(["sms:received", "mms:downloaded", random.pick(strings), jsonValue(random)]),
          deviceId: jsonValue(random),
        },
        {
          messages: random.pick([{ limit_period: "PerDay", limit_value: random.pick(numbers) }, jsonValue(random)]),
          ping: random.pick([{ interval_seconds: random.pick(numbers) }, jsonValue(random)]),
          gateway: jsonValue(random),
          webhooks: random.pick([{ signing_key: random.pick(strings) }, jsonValue(random)]),
        },
      ]);
    for (const prefix of ["/api/3rdparty/v1", "/3rdparty/v1"]) {
      for (const [verb, route] of routes) {
        for (let i = 0; i < requestsPerRoute / 2; i++) {
          const authorization = authorizations();
          const headers: Record<string, string> = {};
          if (authorization !== undefined) headers.authorization = authorization;
          let payload: string | undefined;
          if (verb === "POST" || verb === "PUT" || verb === "PATCH") {
            payload =
              random.next() < 0.8
                ? JSON.stringify(
                    route.endsWith("/message") || route.endsWith("/messages")
                      ? random.pick([
                          message(),
                          message(),
                          jsonValue(random),
                          { textMessage: { text: "Fuzzed" }, phoneNumbers: ["+14155552671"] },
                        ])
                      : random.pick([other(), other(), jsonValue(random)]),
                  )
                : random.pick(strings);
            headers["content-type"] = random.next() < 0.9 ? "application/json" : "text/plain";
          }
          const query =
            random.next() < 0.5
              ? `?${random.pick(["limit", "offset", "state", "from", "to", "sort", "deviceId", "includeContent", "skipPhoneValidation", "deviceActiveWithin"])}=${pathValue(random).slice(0, 4000)}`
              : "";
          // Within the request line's limit (16 KiB; beyond it the connection itself is refused).
          const path = route.replace("{id}", pathValue(random).slice(0, 4000));
          const response = await fetch(`${apiServer.url}${prefix}${path}${query}`, {
            method: verb,
            headers,
            body: payload,
          });
          const what = `${verb} ${prefix}${path.slice(0, 60)}${query.slice(0, 60)} (${authorization?.slice(0, 30)}) -> ${response.status}`;
          const text = await response.text();
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
          // A device's logs are not kept by the server: SMSGate's own answer is 501.
          if (route !== "/logs" || response.status !== 501)
            expect(response.status, `${what} ${text.slice(0, 200)}`).toBeLessThan(500);
          if (response.status >= 400) {
            const parsed = JSON.parse(text) as Record<string, unknown>;
            expect(Object.keys(parsed), `${what} ${text.slice(0, 200)}`).toEqual(["message", "code"]);
            expect(parsed.code, what).toBe(response.status);
          }
        }
        expect((await fetch(`${apiServer.url}/up`)).status).toBe(200);
      }
    }
    // Most requests got past authentication and its limits, and some were accepted.
    const turnedAway = (statuses.get(401) ?? 0) + (statuses.get(429) ?? 0);
    const total = [...statuses.values()].reduce((sum, n) => sum + n, 0);
    expect(turnedAway, JSON.stringify([...statuses])).toBeLessThan(total / 4);
    expect(statuses.get(202) ?? 0, JSON.stringify([...statuses])).toBeGreaterThan(0);
  }, 180_000);
});
