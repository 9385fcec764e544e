import { readFileSync } from "node:fs";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import http2, {
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import type { Socket } from "node:net";
import type { Logger } from "pino";
import type { Config } from "../config.js";

/** Fastify's request handler; it serves HTTP/2 compatibility requests as well. */
type Handler = (req: IncomingMessage, res: ServerResponse) => void;
type Http2Handler = (req: Http2ServerRequest, res: Http2ServerResponse) => void;

const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const http2Settings = { maxConcurrentStreams: 1000 };
/** A connection that has not said which protocol it speaks within this long is closed. */
const sniffTimeoutMs = 10_000;
/** HTTP/2 sessions idle this long (no stream, no frame) are closed; devices ping far more often. */
const http2SessionIdleMs = 5 * 60_000;

/** Takes an HTTP/2 stream before the request handler sees it: true when it did. */
export type StreamTaker = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => boolean;

/** Takes a WebSocket upgrade request for a path. */
export type UpgradeHandler = (request: IncomingMessage, socket: Socket, head: Buffer) => void;

/** The HTTP/2 sessions a listener serves, so shutdown can end them. */
export interface Listener {
  /** For fastify's `serverFactory`. */
  serverFactory(handler: Handler): http.Server;
  /** Routes WebSocket upgrades for `path` (e.g. `/cable`) to `handler`. */
  onWebSocket(path: string, handler: UpgradeHandler): void;
  /** Offers every HTTP/2 stream to `taker` first (the device stream's own door); the rest go to the handler. */
  takeStreams(taker: StreamTaker): void;
  /** Asks every HTTP/2 session to finish its streams and close; destroys them after `graceMs`. */
  closeSessions(graceMs: number): Promise<void>;
}

/**
 * Hands a cleartext connection to the HTTP/2 server when it opens with the HTTP/2 preface (gRPC and
 * Connect over h2c), and to the HTTP/1.1 server otherwise. Node's HTTP/1 server cannot take h2c, and
 * its HTTP/2 server cannot take HTTP/1.1 without TLS, so the first bytes decide.
 */
function sniff(socket: Socket, onHttp1: (socket: Socket) => void, onHttp2: (socket: Socket) => void): void {
  let seen = Buffer.alloc(0);
  // Until a server owns the socket, its errors (a reset, say) are ours to take, or they would end
  // the process; a connection that never says anything is closed.
  const onError = () => socket.destroy();
  const onTimeout = () => socket.destroy();
  socket.on("error", onError);
  socket.setTimeout(sniffTimeoutMs, onTimeout);
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const length = Math.min(seen.length, preface.length);
    const isPrefix = seen.subarray(0, length).equals(preface.subarray(0, length));
    if (isPrefix && seen.length < preface.length) return;
    socket.off("data", onData);
    socket.off("error", onError);
    socket.setTimeout(0);
    socket.off("timeout", onTimeout);
    socket.pause();
    socket.unshift(seen);
    if (isPrefix) {
      // The HTTP/2 session reads what is buffered on the socket itself, then takes over the handle.
      onHttp2(socket);
    } else {
      // The HTTP/1 parser listens for 'data': resuming hands it the buffered bytes.
      onHttp1(socket);
      socket.resume();
    }
  };
  socket.on("data", onData);
}

/**
 * Gives every HTTP/2 session and stream an error path: a client that resets streams, sends a
 * malformed frame or goes away mid-stream ends its own session, logged in one line, and nothing else.
 */
function guardHttp2(server: http2.Http2Server | http2.Http2SecureServer, logger: Logger): void {
  server.on("sessionError", (error: Error) => logger.info({ err: error.message }, "HTTP/2 session error"));
  server.on("session", (session: Http2Session) => {
    session.setTimeout(http2SessionIdleMs, () => session.close());
    session.on("stream", (stream) => stream.on("error", () => undefined));
  });
  server.on("timeout", () => undefined);
}

/** One port for HTTP/1.1 and HTTP/2: ALPN with TLS, first-bytes sniffing without. */
export function createListener(config: Config, logger: Logger): Listener {
  const sessions = new Set<Http2Session>();
  const websockets = new Map<string, UpgradeHandler>();
  let taker: StreamTaker | undefined;

  /**
   * Node's HTTP/2 server makes a compatibility request of every stream once it has a 'request'
   * listener; a stream the taker takes never becomes one.
   */
  const offerStreams = (server: http2.Http2Server | http2.Http2SecureServer) => {
    const compatibility = server.listeners("stream") as ((...args: unknown[]) => void)[];
    server.removeAllListeners("stream");
    server.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) => {
      if (taker?.(stream, headers) === true) return;
      for (const listener of compatibility) listener.call(server, stream, headers, ...rest);
    });
  };

  /**
   * Node hands every request with an `Upgrade` header to 'upgrade' listeners once there is one. A
   * WebSocket upgrade for a registered path goes to its handler; anything else (`Upgrade: h2c` from
   * `curl --http2`, say) is answered as the plain HTTP/1.1 request it also is.
   */
  const upgrade = (handler: Handler) => (request: IncomingMessage, socket: Socket, head: Buffer) => {
    // Node's HTTP server lets go of an upgraded socket, error listener included.
    socket.on("error", () => socket.destroy());
    const path = (request.url ?? "/").split("?")[0] ?? "/";
    const websocket = websockets.get(path);
    if (websocket !== undefined && request.headers.upgrade?.toLowerCase() === "websocket") {
      websocket(request, socket, head);
      return;
    }
    if (head.length > 0) socket.unshift(head);
    const response = new http.ServerResponse(request);
    response.shouldKeepAlive = false;
    response.assignSocket(socket);
    response.on("finish", () => socket.destroySoon());
    handler(request, response);
  };
  const track = (session: Http2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  };

  return {
    serverFactory(handler) {
      if (config.tls !== undefined) {
        const secure = http2.createSecureServer({
          allowHTTP1: true,
          key: readFileSync(config.tls.keyFile),
          cert: readFileSync(config.tls.certFile),
          settings: http2Settings,
        });
        secure.on("request", handler as unknown as Http2Handler);
        offerStreams(secure);
        secure.on("upgrade", upgrade(handler));
        secure.on("session", track);
        guardHttp2(secure, logger);
        // A TLS handshake that fails (garbage, a plain-text client) ends that connection only.
        secure.on("tlsClientError", (error: Error) => logger.debug({ err: error.message }, "TLS client error"));
        // Fastify types its server as HTTP/1; the secure HTTP/2 server with allowHTTP1 serves both.
        return secure as unknown as http.Server;
      }
      const h2 = http2.createServer({ settings: http2Settings });
      h2.on("request", handler as unknown as Http2Handler);
      offerStreams(h2);
      h2.on("session", track);
      guardHttp2(h2, logger);
      const h1 = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 });
      h1.on("request", handler);
      h1.on("upgrade", upgrade(handler));
      // A malformed HTTP/1 request gets a plain 400 and the connection closes; never a crash.
      h1.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => {
        if (socket.writable && error.code !== "ECONNRESET") {
          const body = '{"error":"Bad request"}';
          socket.end(
            `HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
          );
        }
        socket.destroy();
      });
      // Take over h1's own connection handling and call it only for HTTP/1.1 connections, so that
      // fastify (and its WebSocket upgrades) keep working with the real HTTP/1 server.
      const http1Listeners = h1.listeners("connection") as ((socket: Socket) => void)[];
      h1.removeAllListeners("connection");
      h1.on("connection", (socket: Socket) =>
        sniff(
          socket,
          (s) => {
            for (const listener of http1Listeners) listener.call(h1, s);
          },
          (s) => h2.emit("connection", s),
        ),
      );
      return h1;
    },

    onWebSocket(path, handler) {
      websockets.set(path, handler);
    },

    takeStreams(next) {
      taker = next;
    },

    async closeSessions(graceMs) {
      const open = [...sessions];
      await Promise.all(
        open.map(
          (session) =>
            new Promise<void>((resolve) => {
              const timer = setTimeout(() => {
                session.destroy();
                resolve();
              }, graceMs);
              timer.unref();
              session.close(() => {
                clearTimeout(timer);
                resolve();
              });
            }),
        ),
      );
    },
  };
}
