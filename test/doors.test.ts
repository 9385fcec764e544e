import { request } from "node:http";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../gen/smsgw/v1/admin_pb.js";
import { GatewayService } from "../gen/smsgw/v1/gateway_pb.js";
import { OtpService } from "../gen/smsgw/v1/otp_pb.js";
import { clientKey, doors, startServer, unique, withKey } from "./helpers.js";

let server: Awaited<ReturnType<typeof startServer>>;
let admin: string;

beforeAll(async () => {
  server = await startServer();
  admin = await clientKey(server, "admin");
});
afterAll(async () => server.stop());

const doorNames = ["grpc", "connect", "connectH2", "grpcWeb"] as const;

describe.each(doorNames)("the %s door on the shared port", (door) => {
  it("registers a gateway, takes its heartbeat, lists and toggles it", async () => {
    const gateways = doors(server, GatewayService)[door];
    const adminClient = doors(server, AdminService)[door];
    const deviceId = unique(door);

    const registered = await gateways.register({ deviceId, name: "Door phone" });
    expect(registered.success).toBe(true);
    expect(registered.deviceId).toBe(deviceId);
    expect(registered.apiKey).toMatch(/^gw_live_/);
    expect(registered.websocketUrl).toMatch(/\/cable$/);

    const beat = await gateways.heartbeat({ batteryLevel: 42, signalStrength: 3 }, withKey(registered.apiKey));
    expect(beat).toMatchObject({ success: true, pendingMessages: 0 });

    const listed = await adminClient.listGateways({}, withKey(admin));
    const row = listed.gateways.find((gateway) => gateway.deviceId === deviceId);
    expect(row).toMatchObject({
      name: "Door phone",
      status: "online",
      active: true,
      metadata: { battery_level: 42, signal_strength: 3 },
    });
    expect(row?.lastHeartbeatAt).toBeDefined();

    const toggled = await adminClient.toggleGateway({ id: row?.id ?? 0 }, withKey(admin));
    expect(toggled.gateway).toMatchObject({ deviceId, active: false });
  });

  it("reports domain errors with their Connect codes", async () => {
    const gateways = doors(server, GatewayService)[door];
    const deviceId = unique(door);
    await gateways.register({ deviceId });
    const duplicate = await gateways.register({ deviceId }).catch((error: unknown) => ConnectError.from(error));
    expect(duplicate).toBeInstanceOf(ConnectError);
    expect((duplicate as ConnectError).code).toBe(Code.InvalidArgument);
    expect((duplicate as ConnectError).rawMessage).toBe("device_id has already been taken");

    const adminClient = doors(server, AdminService)[door];
    const missing = await adminClient
      .toggleGateway({ id: 987654 }, withKey(admin))
      .catch((error: unknown) => ConnectError.from(error));
    expect((missing as ConnectError).code).toBe(Code.NotFound);
  });

  it("sends and checks an OTP", async () => {
    const otp = doors(server, OtpService)[door];
    const client = await clientKey(server);
    const number = `+1415555${String(910 + doorNames.indexOf(door)).padStart(4, "0")}`;
    const sent = await otp.sendOtp({ phoneNumber: number, purpose: door }, withKey(client));
    expect(sent.messageId).toMatch(/^msg_/);
    const verdict = await otp.verifyOtp({ phoneNumber: number, code: "0", purpose: door }, withKey(client));
    expect(verdict).toMatchObject({
      success: false,
      verified: false,
      error: "Invalid or expired OTP",
      attemptsRemaining: 2,
    });
  });
});

describe("Connect JSON with plain HTTP", () => {
  it("serves a unary RPC to a POST with a JSON body, as curl would send it", async () => {
    const response = await fetch(`${server.url}/smsgw.v1.AdminService/ListGateways`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${admin}` },
      body: "{}",
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toHaveProperty("gateways");
  });

  it("keeps serving HTTP/1.1 to a request that offers an h2c upgrade", async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        `${server.url}/up`,
        { headers: { connection: "Upgrade, HTTP2-Settings", upgrade: "h2c", "http2-settings": "" } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(status).toBe(200);
  });
});
