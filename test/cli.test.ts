import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { childEnv, freePort, rest, startServer, untilUp } from "./helpers.js";

const run = promisify(execFile);
let server: Awaited<ReturnType<typeof startServer>>;

async function smsgw(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run("node", ["bin/smsgw.js", ...args], { env: childEnv() });
}

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => server.stop());

describe("smsgw keys", () => {
  it("creates a client key, printed alone on stdout, that the API accepts", async () => {
    const { stdout } = await smsgw("keys", "create", "--kind", "client", "--name", "billing");
    expect(stdout).toMatch(/^api_live_[0-9a-z]{40}\n$/);
    const key = stdout.trim();
    const res = await rest(server, "GET", "/api/v1/admin/gateways", { key });
    expect(res.status).toBe(403);
    const admin = (await smsgw("keys", "create", "--kind", "admin", "--name", "ops")).stdout.trim();
    expect((await rest(server, "GET", "/api/v1/admin/gateways", { key: admin })).status).toBe(200);
  });

  it("lists keys by their last four characters only, and revokes one at once", async () => {
    const key = (await smsgw("keys", "create", "--kind", "admin", "--name", "to-revoke")).stdout.trim();
    const { stdout: listing } = await smsgw("keys", "list");
    expect(listing).not.toContain(key);
    const line = listing.split("\n").find((row) => row.includes("to-revoke") && row.includes(`…${key.slice(-4)}`));
    const id = line?.split("\t")[0];
    expect(id).toMatch(/^\d+$/);
    await smsgw("keys", "revoke", String(id));
    expect(await rest(server, "GET", "/api/v1/admin/gateways", { key })).toMatchObject({
      status: 401,
      body: { error: "Invalid API key" },
    });
  });

  it("creates an SMSGate account, its login and password on stdout, that SMSGate's third-party API accepts", async () => {
    const { stdout } = await smsgw("keys", "create", "--kind", "account", "--name", "billing app");
    expect(stdout).toMatch(/^[0-9A-Z]{6} [0-9a-z]{14}\n$/);
    const [login, password] = stdout.trim().split(" ");
    const authorization = `Basic ${Buffer.from(`${login}:${password}`).toString("base64")}`;
    expect(await rest(server, "GET", "/3rdparty/v1/messages", { headers: { authorization } })).toMatchObject({
      status: 200,
      body: [],
    });
    const wrong = `Basic ${Buffer.from(`${login}:${password}x`).toString("base64")}`;
    expect((await rest(server, "GET", "/3rdparty/v1/messages", { headers: { authorization: wrong } })).status).toBe(
      401,
    );
    const { stdout: listing } = await smsgw("keys", "list");
    expect(listing).toContain("billing app");
  });

  it("reissues a gateway's key by device id", async () => {
    const deviceId = `cli-${Date.now()}`;
    await rest(server, "POST", "/api/v1/gateway/register", { body: { device_id: deviceId } });
    const key = (await smsgw("keys", "create", "--kind", "gateway", "--device-id", deviceId)).stdout.trim();
    expect(key).toMatch(/^gw_live_/);
    expect((await rest(server, "POST", "/api/v1/gateway/heartbeat", { key, body: {} })).status).toBe(200);
  });

  it("creates a registration token, alone on stdout, that registers a phone running the SMSGate app", async () => {
    const { stdout } = await smsgw("keys", "create", "--kind", "registration", "--name", "phones");
    expect(stdout).toMatch(/^reg_live_[0-9a-z]{40}\n$/);
    const token = stdout.trim();
    const registered = await fetch(`${server.url}/api/mobile/v1/device`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "Pixel/7", simCards: [] }),
    });
    expect(registered.status).toBe(201);
    // It is no API key.
    expect((await rest(server, "GET", "/api/v1/sms/received", { key: token })).status).toBe(401);
    expect((await smsgw("keys", "list")).stdout).toMatch(/\tregistration\tphones\t/);
  });

  it("brings the original system's gateway keys along by their SHA-256: those phones authenticate unchanged", async () => {
    const original = (n: number) =>
      `gw_live_${createHash("sha256").update(`original ${Date.now()} ${n}`).digest("hex")}`;
    const sha = (key: string) => createHash("sha256").update(key).digest("hex");
    const [one, two, three] = [original(1), original(2), original(3)];
    const deviceId = `original-${Date.now()}`;
    const first = await smsgw("keys", "import", "--kind", "gateway", "--device-id", deviceId, "--sha256", sha(one));
    expect(first.stdout).toBe(`${deviceId}\timported\n`);
    expect((await rest(server, "POST", "/api/v1/gateway/heartbeat", { key: one, body: {} })).status).toBe(200);
    const again = await smsgw("keys", "import", "--kind", "gateway", "--device-id", deviceId, "--sha256", sha(one));
    expect(again.stdout).toBe(`${deviceId}\talready imported\n`);
    const file = join(mkdtempSync(join(tmpdir(), "smsgw-import-")), "keys.txt");
    writeFileSync(file, `# from the original\n${deviceId}-a ${sha(two)}\n${deviceId}-b,${sha(three).toUpperCase()}\n`);
    const fromFile = await smsgw("keys", "import", "--kind", "gateway", "--file", file);
    expect(fromFile.stdout).toBe(`${deviceId}-a\timported\n${deviceId}-b\timported\n`);
    for (const key of [two, three]) {
      expect((await rest(server, "POST", "/api/v1/gateway/heartbeat", { key, body: {} })).status).toBe(200);
    }
    expect((await rest(server, "POST", "/api/v1/gateway/heartbeat", { key: original(4), body: {} })).status).toBe(401);
  });

  it("refuses a bad kind with a usage error and exit code 2", async () => {
    const failure = await smsgw("keys", "create", "--kind", "root").catch(
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("--kind must be client, admin, gateway, registration or account"),
    });
  });
});

describe("smsgw seed", () => {
  it("prints a first admin key once, and nothing on stdout when an admin key exists", async () => {
    await server.deps.orm.em.getConnection().execute("update api_keys set revoked_at = now() where scope = 'admin'");
    const first = await smsgw("seed");
    expect(first.stdout).toMatch(/^api_live_[0-9a-z]{40}\n$/);
    expect((await rest(server, "GET", "/api/v1/admin/gateways", { key: first.stdout.trim() })).status).toBe(200);
    const second = await smsgw("seed");
    expect(second.stdout).toBe("");
    expect(second.stderr).toContain("an admin key already exists");
  });
});

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

describe("smsgw serve", () => {
  it("serves on PORT and exits 0 after draining on SIGTERM", async () => {
    const port = await freePort();
    const child = spawn("node", ["bin/smsgw.js", "serve", "--api-only"], {
      env: childEnv({ PORT: String(port), HOST: "127.0.0.1" }),
      stdio: "ignore",
    });
    const url = `http://127.0.0.1:${port}`;
    await untilUp(url);
    const exit = exited(child);
    child.kill("SIGTERM");
    expect(await exit).toBe(0);
  });
});
