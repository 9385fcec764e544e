import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { ConnectRequestSchema, GatewayService } from "../../gen/smsgw/v1/gateway_pb.js";
import { SmsService } from "../../gen/smsgw/v1/sms_pb.js";
import { clientKey, doors, eventually, registeredGateway, rest, startServer, unique, withKey } from "../helpers.js";

let server: Awaited<ReturnType<typeof startServer>>;
let key: string;

beforeAll(async () => {
  server = await startServer();
  key = await clientKey(server);
});
afterAll(async () => server.stop());

const refusal = /contains a character that cannot be stored/;

async function count(table: string): Promise<number> {
  const rows: { count: number }[] = await server.deps.orm.em
    .getConnection()
    .execute(`select count(*)::int as count from ${table}`);
  return rows[0]?.count ?? 0;
}

describe("text PostgreSQL cannot store is refused at the boundary, naming the field", () => {
  it("answers 422 for a NUL in any string a client sends over REST, and stores nothing", async () => {
    const gateway = await registeredGateway(server);
    const before = await count("messages");
    const inboundBefore = await count("inbound_messages");
    const cases: [string, string, { key?: string; body?: unknown }, string][] = [
      ["POST", "/api/v1/sms/send", { key, body: { to: "+14155550000", message: "a\u0000b" } }, "message"],
      [
        "POST",
        "/api/v1/sms/send",
        { key, body: { to: "+14155550000", message: "ab", metadata: { note: "x\u0000" } } },
        "metadata.note",
      ],
      [
        "POST",
        "/api/v1/sms/send",
        { key, body: { to: "+14155550000", message: "ab", metadata: { "k\u0000": 1 } } },
        "metadata",
      ],
      [
        "POST",
        "/api/v1/sms/send",
        { key, body: { to: "+14155550000", message: "ab", idempotency_key: "i\u0000" } },
        "idempotency_key",
      ],
      ["POST", "/api/v1/sms/send", { key, body: { to: "+14155550000", message: "lone \ud800 surrogate" } }, "message"],
      [
        "POST",
        "/api/v1/sms/send_batch",
        { key, body: { to: ["+14155550000", "+1415\u00005550001"], message: "ab" } },
        "to[1]",
      ],
      ["GET", "/api/v1/sms/status/%00", { key }, "message_id"],
      ["POST", "/api/v1/sms/%00/cancel", { key }, "message_id"],
      ["GET", "/api/v1/sms/received?phone_number=%00", { key }, "phone_number"],
      ["POST", "/api/v1/gateway/register", { body: { device_id: "d\u0000", name: "x" } }, "device_id"],
      [
        "POST",
        "/api/v1/gateway/sms/received",
        { key: gateway.key, body: { sender: "+14155550000", message: "a\u0000" } },
        "message",
      ],
      [
        "POST",
        "/api/v1/gateway/sms/status",
        { key: gateway.key, body: { message_id: "m\u0000", status: "sent" } },
        "message_id",
      ],
      ["POST", "/api/v1/otp/send", { key, body: { phone_number: "+14155550000", purpose: "p\u0000" } }, "purpose"],
    ];
    for (const [method, path, options, field] of cases) {
      const answer = await rest(server, method, path, options);
      expect({ path, field, status: answer.status, body: answer.body }).toMatchObject({ path, field, status: 422 });
      expect((answer.body as { error: string }).error).toBe(
        `${field} contains a character that cannot be stored (NUL or an unpaired surrogate)`,
      );
    }
    const header = await rest(server, "POST", "/api/v1/sms/send", {
      key,
      body: { to: "+14155550000", message: "ab" },
      headers: { "idempotency-key": "fine" },
    });
    expect(header.status).toBe(202);
    expect(await count("messages")).toBe(before + 1);
    expect(await count("inbound_messages")).toBe(inboundBefore);
  });

  it("answers invalid_argument on Connect and gRPC", async () => {
    for (const client of Object.values(doors(server, SmsService))) {
      const error = await client.sendSms({ to: "+14155550000", message: "a\u0000b" }, withKey(key)).catch((e) => e);
      expect(ConnectError.from(error).code).toBe(Code.InvalidArgument);
      expect(ConnectError.from(error).rawMessage).toMatch(refusal);
    }
  });

  it("ends a device stream that sends such a frame with invalid_argument", async () => {
    const gateway = await registeredGateway(server);
    const client = createClient(GatewayService, createGrpcTransport({ baseUrl: server.url }));
    async function* frames() {
      yield create(ConnectRequestSchema, {
        frame: { case: "messageReceived", value: { sender: "+14155550000", message: "x\u0000y" } },
      });
      await new Promise((resolve) => setTimeout(resolve, 5_000));
    }
    const error = await (async () => {
      for await (const _ of client.connect(frames(), withKey(gateway.key))) {
        // hello, then the error
      }
    })().catch((e) => e);
    expect(ConnectError.from(error).code).toBe(Code.InvalidArgument);
    expect(ConnectError.from(error).rawMessage).toBe(
      "message_received.message contains a character that cannot be stored (NUL or an unpaired surrogate)",
    );
  });

  it("ignores such a frame on /cable and keeps the socket", async () => {
    const gateway = await registeredGateway(server);
    const socket = new WebSocket(
      `${server.url.replace("http", "ws")}/cable?api_key=${gateway.key}`,
      "actioncable-v1-json",
    );
    const types: string[] = [];
    socket.on("message", (data) => types.push((JSON.parse(String(data)) as { type?: string }).type ?? "message"));
    await new Promise((resolve) => socket.once("open", resolve));
    const identifier = JSON.stringify({
      channel: "GatewayChannel",
      api_key_digest: createHash("sha256").update(gateway.key).digest("hex"),
    });
    socket.send(JSON.stringify({ command: "subscribe", identifier }));
    await eventually(async () => (types.includes("confirm_subscription") ? true : undefined));
    const sender = `+1415555${String(Date.now()).slice(-4)}`;
    const frame = (message: string) =>
      JSON.stringify({
        command: "message",
        identifier,
        data: JSON.stringify({ action: "message_received", sender, message }),
      });
    socket.send(frame("bad\u0000text"));
    socket.send(frame("good text"));
    const stored = await eventually(async () => {
      const rows: { message: string }[] = await server.deps.orm.em
        .getConnection()
        .execute("select body as message from inbound_messages where sender = ?", [sender]);
      return rows.length > 0 ? rows : undefined;
    });
    expect(stored.map((row) => row.message)).toEqual(["good text"]);
    expect(socket.readyState).toBe(WebSocket.OPEN);
    socket.close();
  });
});

describe("requests that do not decode are the client's fault", () => {
  const post = (body: Uint8Array, headers: Record<string, string>) =>
    fetch(`${server.url}/smsgw.v1.SmsService/SendSms`, {
      method: "POST",
      headers: { "content-type": "application/proto", authorization: `Bearer ${key}`, ...headers },
      body,
    });

  it("answers a Connect body that does not parse with invalid_argument (400)", async () => {
    const response = await post(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x41]), {});
    expect(response.status).toBe(400);
    expect(((await response.json()) as { code: string }).code).toBe("invalid_argument");
  });

  it("answers a Connect body that does not decompress with invalid_argument (400)", async () => {
    for (const body of [Buffer.from("garbage"), Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00])]) {
      const response = await post(body, { "content-encoding": "gzip" });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { code: string }).code).toBe("invalid_argument");
    }
    const fine = await post(gzipSync(Buffer.alloc(0)), { "content-encoding": "gzip" });
    expect(fine.status).toBe(400); // an empty SendSms request: "to" is missing, still the client's fault
  });

  it("answers a gRPC message that does not parse with invalid_argument", async () => {
    const payload = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x41]);
    const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, payload.length]), payload]);
    const http2 = await import("node:http2");
    const session = http2.connect(server.url);
    const stream = session.request({
      ":method": "POST",
      ":path": "/smsgw.v1.SmsService/SendSms",
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${key}`,
    });
    const status = new Promise<string | undefined>((resolve) => {
      stream.on("response", (headers) => {
        if (headers["grpc-status"] !== undefined) resolve(String(headers["grpc-status"]));
      });
      stream.on("trailers", (trailers) => resolve(String(trailers["grpc-status"])));
    });
    stream.on("data", () => undefined);
    stream.end(frame);
    expect(await status).toBe(String(Code.InvalidArgument));
    session.close();
  });

  it("answers malformed and over-long URLs in the documented error shape", async () => {
    for (const path of [
      "/api/v1/sms/status/%ZZ",
      `/api/v1/sms/status/${"a".repeat(3000)}`,
      "/api/v1/sms/%E0%A4%A/cancel",
    ]) {
      const answer = await rest(server, path.endsWith("cancel") ? "POST" : "GET", path, { key });
      expect(answer.status).toBe(400);
      expect(Object.keys(answer.body as object)).toEqual(["error"]);
    }
    const unknown = await rest(server, "GET", `/api/v1/sms/status/${unique("msg").repeat(20)}`, { key });
    expect(unknown).toMatchObject({ status: 404, body: { error: "Message not found" } });
  });
});
