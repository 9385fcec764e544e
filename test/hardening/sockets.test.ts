import { type ChildProcess, spawn } from "node:child_process";
import http2 from "node:http2";
import { type Socket, connect as tcpConnect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { childEnv, freePort, rest, unique, untilUp } from "../helpers.js";

/**
 * Bytes no client should be able to kill the server with, sent to a real `smsgw serve` process: after
 * each, the process is alive and `/up` answers 200.
 */
describe("a server fed bad bytes stays up", () => {
  let child: ChildProcess;
  let url: string;
  let port: number;
  let exited = false;
  let gatewayKey: string;

  beforeAll(async () => {
    port = await freePort();
    url = `http://127.0.0.1:${port}`;
    child = spawn("node", ["bin/smsgw.js", "serve", "--api-only"], {
      env: childEnv({ PORT: String(port), HOST: "127.0.0.1" }),
      stdio: ["ignore", "ignore", "pipe"],
    });
    child.once("exit", () => {
      exited = true;
    });
    await untilUp(url);
    const registered = await rest({ url }, "POST", "/api/v1/gateway/register", {
      body: { device_id: unique("hardening"), name: "Hardening phone" },
    });
    expect(registered.status).toBe(201);
    gatewayKey = (registered.body as { api_key: string }).api_key;
  }, 60_000);

  afterAll(async () => {
    if (!exited) {
      const done = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await done;
    }
  });

  async function stillUp(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(exited).toBe(false);
    expect((await fetch(`${url}/up`)).status).toBe(200);
  }

  /**
   * Opens `/cable` (with a gateway key, or none), sends through `send`, and resolves with the close
   * code the server chose.
   */
  function cableCloseCode(send: (socket: WebSocket) => void, key: string | undefined = gatewayKey): Promise<number> {
    return new Promise((resolve, reject) => {
      const query = key === undefined ? "" : `?api_key=${key}`;
      const socket = new WebSocket(`ws://127.0.0.1:${port}/cable${query}`, "actioncable-v1-json");
      socket.on("open", () => send(socket));
      socket.on("close", (code) => resolve(code));
      socket.on("error", () => undefined);
      setTimeout(() => reject(new Error("the server did not close the socket")), 10_000);
    });
  }

  it("closes a socket with 1009 for a frame over the size limit", async () => {
    expect(await cableCloseCode((socket) => socket.send("x".repeat(70 * 1024)))).toBe(1009);
    await stillUp();
    // Without a key the frame races the refusal; either way the process stays.
    await cableCloseCode((socket) => socket.send("x".repeat(70 * 1024)), undefined);
    await stillUp();
  });

  it("closes a socket with 1007 for a text frame that is not UTF-8", async () => {
    // ws validates outgoing text too: write the frame by hand through the raw socket.
    const code = await cableCloseCode((socket) => {
      const payload = Buffer.from([0xff, 0xfe, 0xc3, 0x28]);
      const mask = Buffer.from([1, 2, 3, 4]);
      const masked = Buffer.from(payload.map((byte, i) => byte ^ (mask[i % 4] ?? 0)));
      const raw = (socket as unknown as { _socket: Socket })._socket;
      raw.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
    });
    expect(code).toBe(1007);
    await stillUp();
  });

  it("ignores garbage and frames of the wrong shape, and rejects unknown channels", async () => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/cable?api_key=${gatewayKey}`, "actioncable-v1-json");
    const frames: { type?: string }[] = [];
    socket.on("message", (data) => frames.push(JSON.parse(String(data))));
    await new Promise((resolve) => socket.once("open", resolve));
    for (const frame of ["not json", "[]", "null", '{"command":1}', '{"command":"message","data":{}}']) {
      socket.send(frame);
    }
    socket.send(Buffer.from([0, 1, 2, 3]), { binary: true });
    socket.send(JSON.stringify({ command: "subscribe", identifier: '{"channel":"AdminChannel"}' }));
    await stillUp();
    expect(frames.map((frame) => frame.type)).toContain("reject_subscription");
    expect(socket.readyState).toBe(WebSocket.OPEN);
    socket.close();
  });

  it("survives a connection reset before the protocol is known, and a malformed HTTP/1.1 request", async () => {
    const reset = tcpConnect(port, "127.0.0.1");
    await new Promise((resolve) => reset.once("connect", resolve));
    reset.write("PRI * HT");
    await new Promise((resolve) => setTimeout(resolve, 50));
    reset.resetAndDestroy();

    const malformed = tcpConnect(port, "127.0.0.1");
    const answer = await new Promise<string>((resolve) => {
      let text = "";
      malformed.on("data", (chunk) => {
        text += chunk.toString();
      });
      malformed.on("close", () => resolve(text));
      malformed.write("GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n");
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
    await stillUp();
  });

  it("survives HTTP/2 clients that reset streams, send malformed frames or vanish mid-stream", async () => {
    // A stream opened and reset at once.
    const session = http2.connect(url);
    session.on("error", () => undefined);
    const stream = session.request({ ":method": "POST", ":path": "/smsgw.v1.SmsService/SendSms" });
    stream.on("error", () => undefined);
    stream.close(http2.constants.NGHTTP2_CANCEL);
    // A device stream left mid-frame.
    const half = session.request({
      ":method": "POST",
      ":path": "/smsgw.v1.GatewayService/Connect",
      "content-type": "application/grpc",
    });
    half.on("error", () => undefined);
    half.write(Buffer.from([0, 0, 0, 0, 50, 1, 2]));
    await new Promise((resolve) => setTimeout(resolve, 50));
    session.destroy();

    // The preface, then a frame of an unknown type with a length that lies.
    const raw = tcpConnect(port, "127.0.0.1");
    raw.on("error", () => undefined);
    await new Promise((resolve) => raw.once("connect", resolve));
    raw.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    raw.write(Buffer.from([0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00])); // settings
    raw.write(Buffer.from([0xff, 0xff, 0xff, 0x01, 0x05, 0x00, 0x00, 0x00, 0x01, 0xde, 0xad]));
    raw.write(Buffer.alloc(64, 0xee));
    await new Promise((resolve) => setTimeout(resolve, 100));
    raw.destroy();
    await stillUp();
  });
});
