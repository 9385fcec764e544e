import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { GatewayService } from "../../gen/smsgw/v1/gateway_pb.js";
import { isolate, phoneRack, registeredGateway, startServer } from "../helpers.js";

// An instance holds at most DEVICE_MAX_CONNECTIONS devices (`npm start` sizes its heap for that
// many): one more is refused in the words of its protocol, so that it connects to another instance
// or comes back later, and the process does not grow past the memory it was given.

let server: Awaited<ReturnType<typeof startServer>>;
const phones = phoneRack(() => server);

beforeAll(async () => {
  server = await startServer({ DEVICE_MAX_CONNECTIONS: "1" });
});

afterAll(async () => {
  await phones.disconnectAll();
  await isolate(server);
  await server.stop();
});

describe("an instance that holds as many devices as it may", () => {
  it("refuses one more on the stream (Unavailable) and on /cable (disconnect, reconnect), and takes one when a place is freed", async () => {
    const first = await phones.connect();

    // The stream: Unavailable, with the reason.
    const second = await registeredGateway(server);
    const client = createClient(GatewayService, createGrpcTransport({ baseUrl: server.url }));
    const refused = await (async () => {
      try {
        for await (const _ of client.connect(
          (async function* () {
            yield { frame: { case: "heartbeat" as const, value: {} } };
            await new Promise((resolve) => setTimeout(resolve, 2000));
          })(),
          { headers: { authorization: `Bearer ${second.key}` } },
        )) {
          // a hello would mean it was taken
          return undefined;
        }
        return undefined;
      } catch (error) {
        return ConnectError.from(error);
      }
    })();
    expect(refused?.code).toBe(Code.Unavailable);
    expect(refused?.rawMessage).toMatch(/DEVICE_MAX_CONNECTIONS=1/);

    // /cable: the subscription is not confirmed; the client is told to reconnect, and the socket closes.
    const third = await registeredGateway(server);
    const frames: Record<string, unknown>[] = [];
    await new Promise<void>((resolve, reject) => {
      const socket = new WebSocket(`${server.url.replace("http", "ws")}/cable?api_key=${third.key}`, [
        "actioncable-v1-json",
      ]);
      socket.on("message", (data) => {
        const frame = JSON.parse(String(data)) as Record<string, unknown>;
        frames.push(frame);
        if (frame.type === "welcome")
          socket.send(
            JSON.stringify({ command: "subscribe", identifier: JSON.stringify({ channel: "GatewayChannel" }) }),
          );
      });
      socket.on("close", () => resolve());
      socket.on("error", reject);
    });
    expect(frames.map((frame) => frame.type)).toEqual(["welcome", "disconnect"]);
    expect(frames[1]).toEqual({ type: "disconnect", reason: "remote", reconnect: true });

    // A place freed is taken by the next phone.
    await first.disconnect();
    const next = await phones.connect();
    expect(server.deps.connections.size).toBe(1);
    expect(server.deps.connections.openOf(next.id)).toBeDefined();
  });
});
