import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { promisify } from "node:util";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { ConnectRequest } from "../../gen/smsgw/v1/gateway_pb.js";
import { GatewayService } from "../../gen/smsgw/v1/gateway_pb.js";
import {
  childEnv,
  clientKey,
  eventually,
  fastMessages,
  isolate,
  phoneRack,
  registeredGateway,
  rest,
  startServer,
  withKey,
} from "../helpers.js";

let server: Awaited<ReturnType<typeof startServer>>;
let key: string;
let admin: string;
const phones = phoneRack(() => server);

beforeAll(async () => {
  server = await startServer(fastMessages, { worker: true });
  key = await clientKey(server);
  admin = await clientKey(server, "admin");
});
afterEach(async () => {
  await phones.disconnectAll();
  await isolate(server);
});
afterAll(async () => server.stop());

/** Revokes a gateway's key the way an operator does: `smsgw keys revoke ID` in another process. */
async function revokeWithCli(gatewayId: number): Promise<number> {
  const rows: { id: number }[] = await server.deps.orm.em
    .getConnection()
    .execute("select id from api_keys where gateway_id = ? and revoked_at is null", [gatewayId]);
  const keyId = rows[0]?.id;
  if (keyId === undefined) throw new Error("no key for the gateway");
  await promisify(execFile)("node", ["bin/smsgw.js", "keys", "revoke", String(keyId)], { env: childEnv() });
  return Date.now();
}

/** A device on the gRPC stream that only listens: the commands it gets, and how its stream ended. */
async function listeningDevice(gatewayKey: string) {
  const client = createClient(GatewayService, createGrpcTransport({ baseUrl: server.url }));
  const abort = new AbortController();
  const commands: string[] = [];
  async function* silence(): AsyncIterable<ConnectRequest> {
    await new Promise((resolve) => abort.signal.addEventListener("abort", resolve));
  }
  let hello: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => {
    hello = resolve;
  });
  const ended = (async () => {
    try {
      for await (const response of client.connect(silence(), { ...withKey(gatewayKey), signal: abort.signal })) {
        if (response.frame.case === "hello") hello();
        if (response.frame.case === "sendSms") commands.push(response.frame.value.messageId);
      }
      return { at: Date.now(), error: undefined };
    } catch (error) {
      return { at: Date.now(), error: ConnectError.from(error) };
    } finally {
      abort.abort();
    }
  })();
  await opened;
  return { commands, ended, close: () => abort.abort() };
}

describe("revoking a gateway key cuts its live connections at once", () => {
  it("ends its gRPC stream with unauthenticated within a second, and its messages fail over", async () => {
    const gateway = await registeredGateway(server);
    const device = await listeningDevice(gateway.key);
    const sent = await rest(server, "POST", "/api/v1/sms/send", {
      key,
      body: { to: "+14155550123", message: "revoked mid-flight", gateway_id: gateway.deviceId },
    });
    const messageId = (sent.body as { message_id: string }).message_id;
    await eventually(async () => (device.commands.includes(messageId) ? true : undefined));
    const backup = await phones.connect();

    const revokedAt = await revokeWithCli(gateway.id);
    const ended = await device.ended;
    expect(ended.error?.code).toBe(Code.Unauthenticated);
    expect(ended.at - revokedAt).toBeLessThan(1000);

    await eventually(async () => {
      const answer = await rest(server, "GET", `/api/v1/sms/status/${messageId}`, { key });
      return (answer.body as { status: string }).status === "delivered" ? answer.body : undefined;
    });
    const rows: { gateway_id: number }[] = await server.deps.orm.em
      .getConnection()
      .execute("select gateway_id from messages where id = ?", [messageId]);
    expect(rows[0]?.gateway_id).toBe(backup.id);
    // New calls with the key are refused too.
    const again = await rest(server, "POST", "/api/v1/gateway/heartbeat", { key: gateway.key, body: {} });
    expect(again.status).toBe(401);
  });

  it("sends the documented disconnect frame on /cable and closes the socket within a second", async () => {
    const gateway = await registeredGateway(server);
    const socket = new WebSocket(
      `${server.url.replace("http", "ws")}/cable?api_key=${gateway.key}`,
      "actioncable-v1-json",
    );
    const frames: Record<string, unknown>[] = [];
    socket.on("message", (data) => frames.push(JSON.parse(String(data)) as Record<string, unknown>));
    const closed = new Promise<number>((resolve) => socket.once("close", () => resolve(Date.now())));
    await new Promise((resolve) => socket.once("open", resolve));
    const identifier = JSON.stringify({
      channel: "GatewayChannel",
      api_key_digest: createHash("sha256").update(gateway.key).digest("hex"),
    });
    socket.send(JSON.stringify({ command: "subscribe", identifier }));
    await eventually(async () => (frames.some((frame) => frame.type === "confirm_subscription") ? true : undefined));

    const revokedAt = await revokeWithCli(gateway.id);
    expect((await closed) - revokedAt).toBeLessThan(1000);
    expect(frames.at(-1)).toEqual({ type: "disconnect", reason: "unauthorized", reconnect: false });
  });
});

describe("a gateway toggled inactive is given no new command", () => {
  it("stops pushes to a connected gateway at once, and resumes when it is active again", async () => {
    const gateway = await registeredGateway(server);
    const device = await listeningDevice(gateway.key);
    const toggle = () =>
      rest(server, "POST", `/api/v1/admin/gateways/${gateway.id}/toggle`, { key: admin }).then((answer) => {
        expect(answer.status).toBe(200);
        return (answer.body as { gateway: { active: boolean } }).gateway.active;
      });
    expect(await toggle()).toBe(false);
    // Nothing can reach it now, not even a push that was already on its way.
    expect(
      server.deps.connections.push(gateway.id, { type: "send_sms", messageId: "m", recipient: "+1", message: "x" }),
    ).toBe(false);
    const sent = await rest(server, "POST", "/api/v1/sms/send", {
      key,
      body: { to: "+14155550124", message: "wait for me", gateway_id: gateway.deviceId },
    });
    const messageId = (sent.body as { message_id: string }).message_id;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(device.commands).toEqual([]);

    expect(await toggle()).toBe(true);
    await eventually(async () => (device.commands.includes(messageId) ? true : undefined));
    device.close();
  });
});
