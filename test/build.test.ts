import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { defaultBehaviour, SimulatedGateway } from "../src/simulator/simulated-gateway.js";
import { childEnv, eventually, freePort, rest, unique, untilUp } from "./helpers.js";

/**
 * The production build: `npm run build` compiles to JavaScript and bundles the workflow code ahead of
 * time; with NODE_ENV=production, `bin/smsgw.js` runs the build with no TypeScript at all (a resolve
 * hook refuses any TypeScript file and tsx), and it serves a send through to a phone.
 */
describe("the production build", () => {
  it("builds, and runs the API, the worker and the CLI with node alone", async () => {
    execFileSync("npm", ["run", "--silent", "build"], { stdio: "pipe" });
    expect(existsSync("dist/src/main.js")).toBe(true);
    expect(existsSync("dist/workflow-bundle.js")).toBe(true);
    expect(existsSync("dist/console/dist/index.html")).toBe(true);
    // What `npm start` runs first: a build as new as its sources is not made again.
    const again = spawnSync(process.execPath, ["scripts/build-server.mjs"], { encoding: "utf8" });
    expect(again.status).toBe(0);
    expect(again.stderr).not.toContain("building");

    const env = childEnv({ NODE_ENV: "production", LOG_FORMAT: "json", TEMPORAL_TASK_QUEUE: unique("build-queue") });
    const node = (args: string[]) =>
      execFileSync(process.execPath, ["--import", "./test/fixtures/no-typescript.mjs", "bin/smsgw.js", ...args], {
        env,
        stdio: ["ignore", "pipe", "pipe"],
      }).toString();
    const key =
      node(["keys", "create", "--kind", "client", "--name", unique("build")])
        .trim()
        .split("\n")[0] ?? "";
    expect(key).toMatch(/^api_live_/);

    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    let output = "";
    const child = spawn(process.execPath, ["--import", "./test/fixtures/no-typescript.mjs", "bin/smsgw.js", "serve"], {
      env: { ...env, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "info" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    try {
      await untilUp(url, 60_000);
      const registered = await rest({ url }, "POST", "/api/v1/gateway/register", {
        body: { device_id: unique("built"), name: "Built" },
      });
      const gateway = registered.body as { api_key: string; device_id: string };
      const phone = new SimulatedGateway(
        createGrpcTransport({ baseUrl: url }),
        gateway.api_key,
        gateway.device_id,
        defaultBehaviour,
      );
      await phone.connect();
      const sent = await rest({ url }, "POST", "/api/v1/sms/send", {
        key,
        body: { to: "+14155552671", message: "from the build", gateway_id: gateway.device_id },
      });
      const messageId = (sent.body as { message_id: string }).message_id;
      await eventually(
        async () => {
          const status = await rest({ url }, "GET", `/api/v1/sms/status/${messageId}`, { key });
          return (status.body as { status: string }).status === "delivered" ? true : undefined;
        },
        30_000,
        "delivery by the build",
      );
      await phone.disconnect();
      // The OpenAPI document and the operator console travel with the build.
      expect((await fetch(`${url}/openapi.json`)).status).toBe(200);
      const consolePage = await fetch(`${url}/console/`);
      expect(consolePage.status).toBe(200);
      expect(await consolePage.text()).toContain("/console/assets/");
      // Not a terminal: one JSON object a line.
      const lines = output.split("\n").filter((line) => line.trim() !== "");
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
      expect(output).not.toContain("TypeScript at run time");
    } finally {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
  }, 180_000);

  it("writes readable lines, not JSON, when asked to (and when standard output is a terminal)", () => {
    const script = `import("./src/logger.ts").then(({ createLogger }) => createLogger("info", "pretty").info({ deviceId: "pixel-7" }, "device connected"))`;
    const printed = execFileSync(process.execPath, ["--import", "tsx", "-e", script], { stdio: "pipe" }).toString();
    expect(printed).toMatch(/INFO.*device connected/);
    expect(printed).toContain('deviceId: "pixel-7"');
    expect(printed.trimStart().startsWith("{")).toBe(false);
  });
});
