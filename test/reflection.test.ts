import { execFile } from "node:child_process";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { GrpcReflection } from "grpc-js-reflection-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientKey, startServer } from "./helpers.js";

/**
 * gRPC server reflection on the one port: tools list the services and call them by name with no copy
 * of the .proto files. Checked with `buf curl` (a dev dependency) over gRPC and Connect, and with an
 * independent reflection client from npm (grpc-js-reflection-client on @grpc/grpc-js).
 */
let server: Awaited<ReturnType<typeof startServer>>;
let key: string;

beforeAll(async () => {
  server = await startServer();
  key = await clientKey(server);
});
afterAll(async () => server.stop());

const contract = [
  "smsgw.v1.GatewayService",
  "smsgw.v1.SmsService",
  "smsgw.v1.OtpService",
  "smsgw.v1.AdminService",
  "smsgw.v1.WebhookService",
];

async function bufCurl(args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)("node_modules/.bin/buf", ["curl", "--http2-prior-knowledge", ...args]);
  return stdout;
}

describe("gRPC server reflection", () => {
  it.each([
    ["grpc", "grpc-v1"],
    ["connect", "grpc-v1"],
    ["grpc", "grpc-v1alpha"],
  ])("lists every service and its methods to buf curl over %s (%s)", async (protocol, reflectProtocol) => {
    const options = [`--protocol=${protocol}`, `--reflect-protocol=${reflectProtocol}`];
    const listed = (await bufCurl([...options, "--list-services", server.url])).trim().split("\n");
    expect(listed).toEqual(expect.arrayContaining([...contract, "grpc.reflection.v1.ServerReflection"]));
    const methods = (await bufCurl([...options, "--list-methods", server.url])).trim().split("\n");
    expect(methods).toEqual(
      expect.arrayContaining(["smsgw.v1.SmsService/SendSms", "smsgw.v1.SmsService/ListSmsAttempts"]),
    );
  });

  it("lets buf curl call a method by name, with no schema but the server's", async () => {
    const answer = await bufCurl([
      "--protocol=grpc",
      "-H",
      `Authorization: Bearer ${key}`,
      "-d",
      '{"limit": 1}',
      `${server.url}/smsgw.v1.SmsService/ListReceivedSms`,
    ]);
    expect(JSON.parse(answer)).toMatchObject({ page: 1 });
  });

  it("gives an independent client descriptors complete enough to build a working stub", async () => {
    const address = server.url.replace("http://", "");
    const reflection = new GrpcReflection(address, grpc.credentials.createInsecure());
    expect(await reflection.listServices()).toEqual(expect.arrayContaining(contract));
    // The types come from the server alone (protobufjs, as the client decoded them); a raw gRPC call
    // is encoded and decoded with them. (Its package-object helper is not used: it re-encodes the
    // descriptors for @grpc/proto-loader, which rejects custom method options declared once.)
    const root = (await reflection.getDescriptorBySymbol("smsgw.v1.SmsService")).getProtobufJsRoot();
    const service = root.lookupService("smsgw.v1.SmsService");
    expect(Object.keys(service.methods)).toEqual(
      expect.arrayContaining(["SendSms", "GetSmsStatus", "ListSmsAttempts", "ListReceivedSms"]),
    );
    const request = root.lookupType("smsgw.v1.ListReceivedSmsRequest");
    const response = root.lookupType("smsgw.v1.ListReceivedSmsResponse");
    const client = new grpc.Client(address, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${key}`);
    const answer = await new Promise<Record<string, unknown>>((resolve, reject) =>
      client.makeUnaryRequest(
        "/smsgw.v1.SmsService/ListReceivedSms",
        (message: object) => Buffer.from(request.encode(request.fromObject(message)).finish()),
        (bytes: Buffer) => response.toObject(response.decode(bytes), { defaults: true }),
        { limit: 1 },
        metadata,
        (error, value) => (error ? reject(error) : resolve(value ?? {})),
      ),
    );
    expect(answer).toMatchObject({ page: 1 });
    client.close();

    // An unknown symbol is answered with NOT_FOUND, not a broken stream.
    await expect(reflection.getDescriptorBySymbol("smsgw.v1.NoSuchService")).rejects.toThrow();
  });
});
