import { mkdtempSync, writeFileSync } from "node:fs";
import * as http2 from "node:http2";
import { get, request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { generate } from "selfsigned";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { GatewayService } from "../gen/smsgw/v1/gateway_pb.js";
import { clientKey, eventually, rest, startServer, unique } from "./helpers.js";

describe("GET /up and sends while Redis does not answer", () => {
  it("keeps taking sends, counts rate limits per instance and says so, and shares them again when Redis is back", async () => {
    const server = await startServer();
    try {
      const key = await clientKey(server);
      server.deps.redis.disconnect();
      expect(await rest(server, "GET", "/up")).toMatchObject({
        status: 200,
        body: { status: "degraded", database: "ok", redis: "down", temporal: "ok" },
      });
      const sent = await rest(server, "POST", "/api/v1/sms/send", {
        key,
        body: { to: "+14155552671", message: "sent while Redis is down" },
      });
      expect(sent).toMatchObject({ status: 202, body: { success: true, status: "queued" } });
      expect(sent.headers.get("ratelimit-limit")).not.toBeNull();
      expect((await rest(server, "GET", "/up")).body).toMatchObject({ rate_limiting: "per_instance" });

      await server.deps.redis.connect();
      await rest(server, "GET", `/api/v1/sms/status/${(sent.body as { message_id: string }).message_id}`, { key });
      expect(await rest(server, "GET", "/up")).toMatchObject({
        status: 200,
        body: { status: "ok", redis: "ok", rate_limiting: "shared" },
      });
    } finally {
      await server.stop();
    }
  });
});

describe("while PostgreSQL does not answer", () => {
  it("answers sends with the documented 503, Retry-After and {error}, and /up with 503 naming the database", async () => {
    const server = await startServer();
    try {
      const key = await clientKey(server);
      // The pool gives no connection any more, as when the database is gone.
      await server.deps.orm.close(true);
      const sent = await rest(server, "POST", "/api/v1/sms/send", {
        key,
        body: { to: "+14155552671", message: "not now" },
      });
      expect(sent).toMatchObject({
        status: 503,
        body: { error: "The database is unavailable; try again shortly" },
      });
      expect(sent.headers.get("retry-after")).toBe("5");
      expect(await rest(server, "GET", "/up")).toMatchObject({
        status: 503,
        body: { status: "unavailable", database: "down", redis: "ok", temporal: "ok", rate_limiting: "shared" },
      });
    } finally {
      await server.stop().catch(() => undefined);
    }
  });
});

describe("CORS", () => {
  it("allows the origins in ALLOWED_ORIGINS and no others", async () => {
    const server = await startServer({ ALLOWED_ORIGINS: "https://app.example.com, https://admin.example.com" });
    try {
      const preflight = (origin: string) =>
        fetch(`${server.url}/api/v1/sms/send`, {
          method: "OPTIONS",
          headers: {
            origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type",
          },
        });
      const allowed = await preflight("https://admin.example.com");
      expect(allowed.status).toBe(204);
      expect(allowed.headers.get("access-control-allow-origin")).toBe("https://admin.example.com");
      expect(allowed.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
      const refused = await preflight("https://evil.example.com");
      expect(refused.headers.get("access-control-allow-origin")).toBeNull();
    } finally {
      await server.stop();
    }
  });
});

describe("TLS", () => {
  it("serves HTTP/1.1 REST and gRPC over HTTP/2 on one port with ALPN when TLS_CERT and TLS_KEY are set", async () => {
    const dir = mkdtempSync(join(tmpdir(), "smsgw-tls-"));
    const [cert, key] = [join(dir, "cert.pem"), join(dir, "key.pem")];
    // A certificate for 127.0.0.1, made in the test (no openssl binary needed).
    const pems = await generate([{ name: "commonName", value: "127.0.0.1" }], {
      keySize: 2048,
      algorithm: "sha256",
      notAfterDate: new Date(Date.now() + 86_400_000),
      extensions: [{ name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }] }],
    });
    writeFileSync(cert, pems.cert);
    writeFileSync(key, pems.private);
    const server = await startServer({ TLS_CERT: cert, TLS_KEY: key });
    try {
      const url = server.url.replace("http://", "https://");
      const http1 = await new Promise<{ status: number; protocol: string }>((resolve, reject) => {
        get(`${url}/up`, { rejectUnauthorized: false }, (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, protocol: res.httpVersion });
        }).on("error", reject);
      });
      expect(http1).toEqual({ status: 200, protocol: "1.1" });
      const grpc = createClient(
        GatewayService,
        createGrpcTransport({ baseUrl: url, nodeOptions: { rejectUnauthorized: false } }),
      );
      const registered = await grpc.register({ deviceId: unique("tls") });
      expect(registered.websocketUrl).toMatch(/^wss:\/\//);

      // Action Cable over TLS on the same port: the HTTP/1.1 fallback carries the WebSocket upgrade.
      const socket = new WebSocket(
        `${url.replace("https", "wss")}/cable?api_key=${registered.apiKey}`,
        ["actioncable-v1-json"],
        {
          rejectUnauthorized: false,
        },
      );
      const first = await new Promise<string>((resolve, reject) => {
        socket.once("message", (data: Buffer) => resolve(data.toString("utf8")));
        socket.once("error", reject);
      });
      expect(JSON.parse(first)).toEqual({ type: "welcome" });
      socket.close();

      // The SMSGate app's mobile API: registered over HTTP/1.1, its events stream over HTTP/2 (the
      // app's OkHttp negotiates h2 by ALPN).
      const token = (await server.deps.keys.create({ scope: "registration", name: unique("tls") })).key;
      const phone = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(
          `${url}/api/mobile/v1/device`,
          {
            method: "POST",
            rejectUnauthorized: false,
            headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          },
          (res) => {
            let body = "";
            res.on("data", (chunk: Buffer) => {
              body += chunk.toString("utf8");
            });
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on("error", reject);
        req.end(JSON.stringify({ name: "Pixel/9", simCards: [] }));
      });
      expect(phone.status).toBe(201);
      const { id, token: deviceToken } = JSON.parse(phone.body) as { id: string; token: string };
      const session = http2.connect(url, { rejectUnauthorized: false });
      const stream = session.request({ ":path": "/api/mobile/v1/events", authorization: `Bearer ${deviceToken}` });
      const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once("response", resolve));
      expect(headers[":status"]).toBe(200);
      expect(headers["content-type"]).toBe("text/event-stream");
      const gatewayId = (await server.deps.gateways.idOf(id)) ?? 0;
      expect(server.deps.connections.openOf(gatewayId)?.channel).toBe("sse");
      stream.close();
      session.close();
      await eventually(async () => (server.deps.connections.openOf(gatewayId) === undefined ? true : undefined), 5_000);
    } finally {
      await server.stop();
    }
  });
});
