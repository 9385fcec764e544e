import { type DescMethod, getOption } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { http } from "../gen/google/api/annotations_pb.js";
import { AuthRequirement, auth } from "../gen/smsgw/v1/options_pb.js";
import { KeyRepository, KeysService } from "../src/modules/keys/index.js";
import { services } from "../src/rpc/routes.js";
import { clientKey, registeredGateway, rest, startServer } from "./helpers.js";

let server: Awaited<ReturnType<typeof startServer>>;
const keys: Record<string, string> = {};

beforeAll(async () => {
  server = await startServer();
  keys.client = await clientKey(server, "client");
  keys.admin = await clientKey(server, "admin");
  keys.gateway = (await registeredGateway(server)).key;
  const revoked = await server.deps.keys.create({ scope: "admin", name: "revoked" });
  await server.deps.keys.revoke(revoked.record.id);
  keys.revoked = revoked.key;
  keys.unknown = `api_live_${"0".repeat(40)}`;
  keys.malformed = "not-a-key";
});
afterAll(async () => server.stop());

const methods = services.flatMap((service) => service.methods);
const restMethods = methods.filter((method) => getOption(method, http).pattern.case !== undefined);

/**
 * The RPC's REST verb and path, its path parameters naming nothing that exists: the walk calls every
 * route with every key, and must not revoke, delete or change what the other tests use (on a fresh
 * database, key 1 is this file's client key).
 */
function restRoute(method: DescMethod): { verb: string; path: string } {
  const pattern = getOption(method, http).pattern;
  return {
    verb: String(pattern.case).toUpperCase(),
    path: String(pattern.value).replace(/\{[a-z_]+\}/g, "2147483647"),
  };
}

/** Which keys an RPC's requirement lets through; every other key is refused. */
const allowed: Record<AuthRequirement, string[]> = {
  [AuthRequirement.UNSPECIFIED]: [],
  [AuthRequirement.NONE]: ["client", "admin", "gateway", "revoked", "unknown", "malformed", "none"],
  [AuthRequirement.GATEWAY]: ["gateway"],
  [AuthRequirement.CLIENT]: ["client", "admin"],
  [AuthRequirement.ADMIN]: ["admin"],
};

function expectedRefusal(requirement: AuthRequirement, key: string): { status: number; error: string } | undefined {
  if (allowed[requirement].includes(key)) return undefined;
  if (key === "none") return { status: 401, error: "Missing API key" };
  if (key === "revoked" || key === "unknown" || key === "malformed") return { status: 401, error: "Invalid API key" };
  const needs = {
    [AuthRequirement.GATEWAY]: "This operation needs a gateway key (gw_live_…)",
    [AuthRequirement.CLIENT]: "This operation needs a client key (api_live_…)",
    [AuthRequirement.ADMIN]: "This operation needs an admin key",
  } as Record<AuthRequirement, string>;
  return { status: 403, error: needs[requirement] ?? "This operation is not available" };
}

const keyNames = ["none", "malformed", "unknown", "revoked", "gateway", "client", "admin"];

describe("every RPC states who may call it", () => {
  it.each(methods.map((method) => [method.parent.name, method.name, method] as const))("%s.%s", (_s, _m, method) => {
    expect(getOption(method, auth)).not.toBe(AuthRequirement.UNSPECIFIED);
  });
});

describe("the REST door refuses the wrong key with the documented status and body", () => {
  const cases = restMethods.flatMap((method) => keyNames.map((key) => [restRoute(method).path, key, method] as const));
  it.each(cases)("%s with %s key", async (_path, key, method) => {
    const { verb, path } = restRoute(method);
    const requirement = getOption(method, auth);
    const res = await rest(server, verb, path, {
      ...(key === "none" ? {} : { key: keys[key] }),
      ...(verb === "GET" ? {} : { body: {} }),
    });
    const refusal = expectedRefusal(requirement, key);
    if (refusal === undefined) {
      expect([401, 403]).not.toContain(res.status);
    } else {
      expect({ status: res.status, body: res.body }).toEqual({
        status: refusal.status,
        body: { error: refusal.error },
      });
    }
    expect(res.status).not.toBe(500);
  });
});

describe("the gRPC door refuses the wrong key with UNAUTHENTICATED or PERMISSION_DENIED", () => {
  const unary = methods.filter((method) => method.methodKind === "unary");
  const cases = unary.flatMap((method) =>
    keyNames.map((key) => [`${method.parent.name}.${method.name}`, key, method] as const),
  );
  it.each(cases)("%s with %s key", async (_name, key, method) => {
    const client = createClient(method.parent, createGrpcTransport({ baseUrl: server.url })) as unknown as Record<
      string,
      (request: object, options: object) => Promise<unknown>
    >;
    const call = client[method.localName];
    if (call === undefined) throw new Error(`no client method ${method.localName}`);
    const headers = key === "none" ? {} : { authorization: `Bearer ${keys[key]}` };
    const outcome = await call({}, { headers }).then(
      () => "ok" as const,
      (error: unknown) => ConnectError.from(error).code,
    );
    const refusal = expectedRefusal(getOption(method, auth), key);
    if (refusal === undefined) expect([Code.Unauthenticated, Code.PermissionDenied]).not.toContain(outcome);
    else expect(outcome).toBe(refusal.status === 401 ? Code.Unauthenticated : Code.PermissionDenied);
    expect(outcome).not.toBe(Code.Internal);
  });
});

describe("checking keys", () => {
  /** A fresh service (nothing remembered), and how many times keys were read from the database since. */
  function countingKeys() {
    const repository = new KeyRepository(server.deps.orm.em.fork());
    const spy = vi.spyOn(repository, "byDigest");
    return { service: new KeysService(repository), reads: () => spy.mock.calls.length };
  }

  it("reads a key once for a burst of calls that present it together", async () => {
    const { service, reads } = countingKeys();
    const principals = await Promise.all(Array.from({ length: 20 }, () => service.authenticate(keys.client ?? "")));
    expect(new Set(principals.map((principal) => principal?.keyId)).size).toBe(1);
    expect(principals[0]).toMatchObject({ scope: "client" });
    expect(reads()).toBe(1);
    await service.authenticate(keys.client ?? "");
    expect(reads()).toBe(1);
  });

  it("does not remember a key read before its revocation was heard", async () => {
    const { service, reads } = countingKeys();
    const created = await server.deps.keys.create({ scope: "client", name: "revoked while read" });
    const reading = service.authenticate(created.key);
    await server.deps.keys.revoke(created.record.id);
    service.forget(created.record.id);
    expect(await reading).toBeDefined();
    expect(await service.authenticate(created.key)).toBeUndefined();
    expect(reads()).toBe(2);
  });
});
