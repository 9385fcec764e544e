import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { compressionGzip, createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ConnectRequest, ConnectRequestSchema, GatewayService } from "../gen/smsgw/v1/gateway_pb.js";
import type { Running } from "../src/serve.js";
import { clientKey, registeredGateway, startServer, withKey } from "./helpers.js";

// A phone's gRPC stream (plain protobuf, uncompressed) is served by the device stream's own door; the
// same RPC over the Connect protocol, or compressed, goes through the Connect router. A phone must not
// be able to tell them apart: the same first message, receipts, refusals and endings.
describe("GatewayService.Connect through its own door and through the router", () => {
  let server: Running & { url: string };
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(() => server.stop());

  const doors = () => ({
    "gRPC (its own door)": createClient(GatewayService, createGrpcTransport({ baseUrl: server.url })),
    "gRPC, gzip (the router)": createClient(
      GatewayService,
      createGrpcTransport({ baseUrl: server.url, sendCompression: compressionGzip }),
    ),
    "Connect over HTTP/2 (the router)": createClient(
      GatewayService,
      createConnectTransport({ baseUrl: server.url, httpVersion: "2" }),
    ),
  });

  type Frame = MessageInitShape<typeof ConnectRequestSchema>["frame"];

  /** Frames written by the test while the stream runs; ended by `end`. */
  function outbox() {
    const queue: ConnectRequest[] = [];
    let wake: (() => void) | undefined;
    let ended = false;
    return {
      send(frame: Frame) {
        queue.push(create(ConnectRequestSchema, { frame }));
        wake?.();
      },
      end() {
        ended = true;
        wake?.();
      },
      async *frames(): AsyncIterable<ConnectRequest> {
        for (;;) {
          const next = queue.shift();
          if (next !== undefined) yield next;
          else if (ended) return;
          else await new Promise<void>((resolve) => (wake = resolve));
        }
      },
    };
  }

  /** How a stream ended: its error's code and message, or "ok". */
  const ending = (error: unknown) =>
    error === undefined ? "ok" : `${Code[ConnectError.from(error).code]}: ${ConnectError.from(error).rawMessage}`;

  it("says hello, answers a report with its receipt, and ends well when the phone ends its side", async () => {
    for (const [name, client] of Object.entries(doors())) {
      const gateway = await registeredGateway(server);
      const box = outbox();
      const seen: string[] = [];
      const error = await (async () => {
        for await (const response of client.connect(box.frames(), withKey(gateway.key))) {
          if (response.frame.case === "hello") {
            seen.push(`hello ${response.frame.value.deviceId === gateway.deviceId}`);
            box.send({ case: "messageReceived", value: { sender: "+14155550101", message: "hi", reportId: "r-1" } });
          } else if (response.frame.case === "receipt") {
            seen.push(`receipt ${response.frame.value.reportId} ${response.frame.value.error ?? ""}`.trim());
            box.end();
          }
        }
      })().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect([name, ...seen, ending(error)]).toEqual([name, "hello true", "receipt r-1", "ok"]);
    }
  });

  it("refuses a client key, a missing key and a frame that cannot be stored alike", async () => {
    const client = await clientKey(server);
    for (const [name, door] of Object.entries(doors())) {
      const gateway = await registeredGateway(server);
      const run = async (options: { headers?: Record<string, string> }, frame?: Frame) => {
        const box = outbox();
        if (frame !== undefined) box.send(frame);
        try {
          for await (const _ of door.connect(box.frames(), options)) {
            // hello (for a key it takes), then the end
          }
          return "ok";
        } catch (error) {
          return ending(error);
        } finally {
          box.end();
        }
      };
      expect([
        name,
        await run(withKey(client)),
        await run({}),
        await run(withKey(gateway.key), { case: "messageReceived", value: { sender: "+1415", message: "x\u0000y" } }),
      ]).toEqual([
        name,
        "PermissionDenied: This operation needs a gateway key (gw_live_…)",
        "Unauthenticated: Missing API key",
        "InvalidArgument: message_received.message contains a character that cannot be stored (NUL or an unpaired surrogate)",
      ]);
    }
  });

  it("ends an older stream of the same phone with aborted when a newer one connects", async () => {
    for (const [name, door] of Object.entries(doors())) {
      const gateway = await registeredGateway(server);
      const first = outbox();
      const second = outbox();
      let helloSeen: () => void = () => undefined;
      const greeted = new Promise<void>((resolve) => (helloSeen = resolve));
      const older = (async () => {
        for await (const _ of door.connect(first.frames(), withKey(gateway.key))) helloSeen();
      })().then(
        () => "ok",
        (error: unknown) => ending(error),
      );
      await greeted;
      const newer = (async () => {
        for await (const response of door.connect(second.frames(), withKey(gateway.key))) {
          if (response.frame.case === "hello") second.end();
        }
      })().then(
        () => "ok",
        (error: unknown) => ending(error),
      );
      expect([name, await older, await newer]).toEqual([
        name,
        "Aborted: a newer connection of this gateway took over",
        "ok",
      ]);
      first.end();
    }
  });
});
