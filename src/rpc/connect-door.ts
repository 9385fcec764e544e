import type { JsonValue } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  type ContextValues,
  createConnectRouter,
  type Interceptor,
} from "@connectrpc/connect";
import type { Compression, UniversalServerResponse } from "@connectrpc/connect/protocol";
import * as protoConnect from "@connectrpc/connect/protocol-connect";
import * as protoGrpc from "@connectrpc/connect/protocol-grpc";
import * as protoGrpcWeb from "@connectrpc/connect/protocol-grpc-web";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Logger } from "pino";

/**
 * connect-es reports a request body that does not decode as `internal` (the same code its clients use
 * for a response that does not decode). On a server both are the caller's fault: `invalid_argument`.
 */
const undecodable = /^(parse binary|parse json|decompression failed)/;

/** A compression whose failures to decompress are the caller's fault, not the server's. */
function clientFaultDecompression(compression: Compression): Compression {
  return {
    name: compression.name,
    compress: (bytes) => compression.compress(bytes),
    decompress: (bytes, readMaxBytes) =>
      compression.decompress(bytes, readMaxBytes).catch((error: unknown) => {
        const connectError = ConnectError.from(error);
        if (connectError.code !== Code.Internal) throw connectError;
        throw new ConnectError(connectError.rawMessage, Code.InvalidArgument, undefined, undefined, error);
      }),
  };
}

async function allBytes(body: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** A gRPC status (in trailers, or in the headers of a trailers-only answer) for an undecodable request, corrected. */
function correctGrpcStatus(headers: Headers): void {
  if (headers.get("grpc-status") !== String(Code.Internal)) return;
  const message = decodeURIComponent(headers.get("grpc-message") ?? "");
  if (undecodable.test(message)) headers.set("grpc-status", String(Code.InvalidArgument));
}

/** The response, with the status of an undecodable request body set to `invalid_argument`. */
async function clientFaultParse(response: UniversalServerResponse): Promise<UniversalServerResponse> {
  if (response.header === undefined) return response;
  const contentType = response.header.get("content-type") ?? "";
  if (response.status === 500 && contentType.startsWith(protoConnect.contentTypeUnaryJson) && response.body) {
    const bytes = await allBytes(response.body as AsyncIterable<Uint8Array>);
    const error = JSON.parse(Buffer.from(bytes).toString("utf8")) as { code?: string; message?: string };
    if (error.code !== "internal" || !undecodable.test(error.message ?? "")) {
      return {
        ...response,
        body: (async function* () {
          yield bytes;
        })(),
      };
    }
    const corrected = Buffer.from(JSON.stringify({ code: "invalid_argument", message: error.message }));
    const header = new Headers(response.header);
    header.set("content-length", String(corrected.byteLength));
    return {
      status: 400,
      header,
      body: (async function* () {
        yield corrected;
      })(),
    };
  }
  correctGrpcStatus(response.header);
  const { body, trailer } = response;
  if (trailer === undefined || body === undefined || body instanceof Uint8Array) return response;
  return {
    ...response,
    body: (async function* () {
      yield* body as AsyncIterable<Uint8Array>;
      correctGrpcStatus(trailer);
    })(),
  };
}

/**
 * Serves the Connect router (gRPC, gRPC-Web and Connect) in its own fastify scope, with body parsing
 * left to Connect. What the client sent wrong is answered as `invalid_argument`, and a failed handler
 * is logged through the server's logger.
 */
export async function registerConnectDoor(
  app: FastifyInstance,
  options: {
    routes: (router: ConnectRouter) => void;
    interceptors: Interceptor[];
    readMaxBytes: number;
    contextValues: (request: FastifyRequest) => ContextValues;
    logger: Logger;
  },
): Promise<void> {
  const router = createConnectRouter({
    interceptors: options.interceptors,
    readMaxBytes: options.readMaxBytes,
    acceptCompression: [clientFaultDecompression(compressionGzip), clientFaultDecompression(compressionBrotli)],
    grpc: true,
    grpcWeb: true,
    connect: true,
  });
  options.routes(router);
  await app.register(async (scope) => {
    const keepRaw = (_request: unknown, _payload: unknown, done: (error: null, body: undefined) => void) =>
      done(null, undefined);
    scope.addContentTypeParser(
      [
        protoConnect.contentTypeUnaryJson,
        protoConnect.contentTypeStreamJson,
        protoGrpcWeb.contentTypeProto,
        protoGrpcWeb.contentTypeJson,
        protoGrpc.contentTypeProto,
        protoGrpc.contentTypeJson,
      ],
      keepRaw,
    );
    for (const pattern of [
      protoGrpc.contentTypeRegExp,
      protoGrpcWeb.contentTypeRegExp,
      protoConnect.contentTypeRegExp,
    ]) {
      scope.addContentTypeParser(pattern, keepRaw);
    }
    for (const handler of router.handlers) {
      scope.all(handler.requestPath, async (request, reply) => {
        try {
          const response = await handler(
            universalRequestFromNodeRequest(
              request.raw,
              reply.raw,
              request.body as JsonValue | undefined,
              options.contextValues(request),
            ),
          );
          // Headers fastify's hooks set (CORS) live on the reply until sent; this reply is written raw.
          for (const [name, value] of Object.entries(reply.getHeaders())) {
            if (value !== undefined) reply.raw.setHeader(name, value);
          }
          await universalResponseToNodeResponse(await clientFaultParse(response), reply.raw);
        } catch (error) {
          if (ConnectError.from(error).code === Code.Aborted) return;
          options.logger.warn(
            { err: error, rpc: `${handler.service.typeName}/${handler.method.name}` },
            "writing an RPC response failed",
          );
        }
      });
    }
  });
}
