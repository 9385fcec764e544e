import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { create, fromBinary, getOption, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import * as protoGrpc from "@connectrpc/connect/protocol-grpc";
import type { Logger } from "pino";
import {
  type ConnectRequest,
  ConnectRequestSchema,
  ConnectResponseSchema,
  GatewayService,
} from "../../gen/smsgw/v1/gateway_pb.js";
import { auth } from "../../gen/smsgw/v1/options_pb.js";
import type { DeviceConnection, DeviceHub } from "../modules/devices/index.js";
import { DomainError } from "../shared/errors.js";
import { endingOf, helloOf, toFrame, toResponse, undecodableFrame } from "./device-stream.js";
import { toConnectError } from "./errors.js";
import { type AuthServices, admit, rateLimitHeaders } from "./interceptors.js";
import { checkStorableText } from "./text-check.js";

/** `GatewayService.Connect`'s path, as gRPC clients call it. */
const path = `/${GatewayService.typeName}/${GatewayService.method.connect.name}`;
const grpcContentTypes = new Set(["application/grpc", protoGrpc.contentTypeProto]);
/** Frames read and not yet handled past which the stream stops reading until they are. */
const maxFramesWaiting = 64;

/**
 * Whether the device stream's own door takes this HTTP/2 stream: a gRPC call of
 * `GatewayService.Connect` in protobuf, uncompressed, without a deadline, as phones make it. Any
 * other call of it (Connect or gRPC-Web, JSON, compressed, with a deadline) goes through the Connect
 * router as every other RPC does, with the same outcome.
 */
export function takesDeviceStream(headers: IncomingHttpHeaders): boolean {
  const encoding = headers["grpc-encoding"];
  return (
    headers[":path"] === path &&
    headers[":method"] === "POST" &&
    grpcContentTypes.has(headers["content-type"] ?? "") &&
    (encoding === undefined || encoding === "identity") &&
    headers["grpc-timeout"] === undefined
  );
}

/** gRPC's status trailers for how a call ended, as the Connect router writes them (metadata, details). */
function statusOf(error: ConnectError | undefined): Record<string, string> {
  return Object.fromEntries(protoGrpc.setTrailerStatus(new Headers(), error));
}

/** Splits the request body into its messages, refusing compressed ones and those over `maxBytes`. */
class EnvelopeReader {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly maxBytes: number) {}

  /** The whole messages `chunk` completes; throws a ConnectError for a message it cannot take. */
  read(chunk: Buffer): Buffer[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const messages: Buffer[] = [];
    while (this.pending.length >= 5) {
      const flags = this.pending.readUInt8(0);
      const length = this.pending.readUInt32BE(1);
      if ((flags & 0x01) !== 0) throw undecodableFrame("a compressed message without grpc-encoding");
      if (length > this.maxBytes) {
        throw new ConnectError(
          `message size ${length} is larger than configured readMaxBytes ${this.maxBytes}`,
          Code.ResourceExhausted,
        );
      }
      if (this.pending.length < 5 + length) break;
      messages.push(this.pending.subarray(5, 5 + length));
      this.pending = this.pending.subarray(5 + length);
    }
    return messages;
  }

  /** Whether a message was begun and not finished when the body ended. */
  get partial(): boolean {
    return this.pending.length > 0;
  }
}

/**
 * The device stream's own door: `GatewayService.Connect` served straight on the HTTP/2 stream, with
 * gRPC's framing written here. A phone holds its stream for as long as it is online, and through the
 * general router one stream held about 60 KiB of the server's heap in layers of async generators,
 * framework request objects and their closures; here it holds the connection, its reader and a few
 * listeners. It admits the call as the router does (`admit`: the key, its kind, the rate limits),
 * refuses a frame as the router does (undecodable, text PostgreSQL cannot store, a report id too
 * long), and ends with the same status, message and metadata.
 */
export class DeviceGrpcDoor {
  private readonly requirement = getOption(GatewayService.method.connect, auth);

  constructor(private readonly deps: AuthServices & { hub: DeviceHub; logger: Logger; readMaxBytes: number }) {}

  /** Serves the stream (`takesDeviceStream` said it is one of ours). */
  serve(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    this.run(stream, headers).catch((error: unknown) => {
      this.deps.logger.warn({ err: error }, "serving a device stream failed");
      stream.destroy();
    });
  }

  private async run(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
    const { hub, logger } = this.deps;
    const contentType = headers["content-type"] ?? "application/grpc";
    let connection: DeviceConnection;
    let rateHeaders: Record<string, string>;
    try {
      const admitted = await admit(this.deps, {
        requirement: this.requirement,
        peer: stream.session?.socket?.remoteAddress ?? "unknown",
        authorization: typeof headers.authorization === "string" ? headers.authorization : null,
      });
      const principal = admitted.principal;
      if (principal?.kind !== "gateway")
        throw new DomainError("permission_denied", "This operation needs a gateway key");
      rateHeaders = rateLimitHeaders(admitted.decision);
      connection = await hub.connect(principal, "stream");
    } catch (error) {
      // Refused before any message: gRPC's trailers-only answer.
      if (!stream.destroyed) {
        stream.respond(
          { ":status": 200, "content-type": contentType, ...statusOf(toConnectError(error, logger, undefined)) },
          { endStream: true },
        );
      }
      return;
    }
    const gone = () => connection.close(connection.closeReason ?? "device_closed");
    let refused: ConnectError | undefined;
    // Whatever happens from here, the hub lets go of the connection.
    try {
      stream.once("close", gone);
      if (stream.destroyed) gone();
      else stream.respond({ ":status": 200, "content-type": contentType, ...rateHeaders }, { waitForTrailers: true });
      this.read(stream, connection, (error) => {
        refused ??= error instanceof ConnectError ? error : toConnectError(error, logger, undefined);
      });
      await this.write(stream, create(ConnectResponseSchema, helloOf(hub, connection.gateway.deviceId)));
      for await (const command of connection.commands) {
        const response = toResponse(command);
        if (response !== undefined) await this.write(stream, create(ConnectResponseSchema, response));
      }
    } finally {
      stream.off("close", gone);
      gone();
      await hub.disconnect(connection);
    }
    if (stream.destroyed) return;
    const status = statusOf(refused ?? endingOf(connection));
    stream.once("wantTrailers", () => {
      // The phone may have gone between the end and its trailers: nothing is left to tell it.
      try {
        if (!stream.destroyed) stream.sendTrailers(status);
      } catch {
        stream.destroy();
      }
    });
    stream.end();
  }

  /** Writes one message, waiting while the stream's buffer is full (a phone reading slowly). */
  private async write(stream: ServerHttp2Stream, message: ReturnType<typeof create<typeof ConnectResponseSchema>>) {
    if (stream.destroyed) return;
    if (stream.write(encodeEnvelope(0, toBinary(ConnectResponseSchema, message)))) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        stream.off("drain", done);
        stream.off("close", done);
        resolve();
      };
      stream.on("drain", done);
      stream.on("close", done);
    });
  }

  /**
   * Reads the device's frames and hands them to the hub one after another, in order; the stream
   * stops reading while many wait. The connection closes when the device ends its side, or with
   * `refuse` told why when a frame is refused.
   */
  private read(stream: ServerHttp2Stream, connection: DeviceConnection, refuse: (error: unknown) => void): void {
    const { hub } = this.deps;
    const reader = new EnvelopeReader(this.deps.readMaxBytes);
    const waiting: ConnectRequest[] = [];
    let handling = false;
    let ended = false;
    const stop = (error: unknown) => {
      stream.off("data", onData);
      waiting.length = 0;
      refuse(error);
      connection.close(connection.closeReason ?? "device_closed");
    };
    const handle = async () => {
      if (handling) return;
      handling = true;
      try {
        for (let request = waiting.shift(); request !== undefined; request = waiting.shift()) {
          if (stream.isPaused() && waiting.length < maxFramesWaiting / 2) stream.resume();
          checkStorableText(ConnectRequestSchema, request);
          const frame = toFrame(request);
          if (frame !== undefined) await hub.handle(connection, frame);
        }
      } catch (error) {
        if (error instanceof DomainError || error instanceof ConnectError) stop(error);
        else throw error;
      } finally {
        handling = false;
      }
      if (ended && connection.closeReason === undefined) connection.close("device_closed");
    };
    const onData = (chunk: Buffer) => {
      try {
        for (const bytes of reader.read(chunk)) waiting.push(fromBinary(ConnectRequestSchema, bytes));
      } catch (error) {
        // As the router words it: the protobuf runtime's reason after "parse binary".
        stop(error instanceof ConnectError ? error : undecodableFrame(`parse binary: ${(error as Error).message}`));
        return;
      }
      if (waiting.length >= maxFramesWaiting) stream.pause();
      void handle().catch((error: unknown) => stop(error));
    };
    stream.on("data", onData);
    stream.once("end", () => {
      ended = true;
      if (reader.partial) stop(undecodableFrame("the stream ended inside a message"));
      else void handle().catch((error: unknown) => stop(error));
    });
  }
}
