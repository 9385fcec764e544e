import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { devServerSetup, ensureLocalTemporal, type LocalTemporal } from "../../src/temporal/dev-server.js";
import {
  clientKey,
  eventually,
  fastMessages,
  freePort,
  isolate,
  rest,
  simulatedGateway,
  startServer,
  untilStatus,
} from "../helpers.js";

// Only PostgreSQL is needed to start: a server started while Temporal does not answer comes up,
// stores sends (as in a Temporal outage), and, when Temporal comes, registers its search attributes,
// starts its workers and the workflows of what it stored. The Temporal here is the test's own dev
// server (its own port, in memory), started only after the server.

let temporal: LocalTemporal | undefined;
let server: Awaited<ReturnType<typeof startServer>> | undefined;

afterAll(async () => {
  if (server !== undefined) {
    await isolate(server);
    await server.stop();
  }
  await temporal?.stop();
});

describe("starting while Temporal does not answer", () => {
  it("comes up degraded, takes sends, and delivers them once Temporal comes", async () => {
    const port = await freePort();
    server = await startServer({ ...fastMessages, TEMPORAL_ADDRESS: `127.0.0.1:${port}` }, { worker: true });
    const running = server;
    const up = await rest(running, "GET", "/up");
    expect(up).toMatchObject({ status: 200, body: { status: "degraded", database: "ok", temporal: "down" } });

    // Sends are taken: they need PostgreSQL only, and their workflows start when Temporal comes.
    const key = await clientKey(running);
    const accepted = await rest(running, "POST", "/api/v1/sms/send", {
      key,
      body: { to: "+14155552611", message: "Taken while Temporal was away" },
    });
    expect(accepted.status).toBe(202);
    const messageId = (accepted.body as { message_id: string }).message_id;
    // Reads need only PostgreSQL too.
    const status = await rest(running, "GET", `/api/v1/sms/status/${messageId}`, { key });
    expect(status.status).toBe(200);

    // Temporal comes, a fresh one: no search attributes, no namespace cache. The server sets itself up.
    temporal = await ensureLocalTemporal({
      ...devServerSetup(loadConfig()),
      port,
      uiPort: undefined,
      dataDir: undefined,
      namespace: "default",
      logger: pino({ level: "silent" }),
    });
    await eventually(async () => {
      const res = await rest(running, "GET", "/up");
      return (res.body as { status: string }).status === "ok" ? true : undefined;
    }, 30_000);
    await simulatedGateway(running);
    const final = await untilStatus(running, key, messageId, "delivered", 30_000);
    expect(final.status).toBe("delivered");
    // Its workflow is the one operators find by the message's id.
    const found = await eventually(async () => {
      for await (const workflow of running.deps.temporal.workflow.list({ query: `SmsMessageId = '${messageId}'` }))
        return workflow.workflowId;
      return undefined;
    }, 15_000);
    expect(found).toBe(`message/${messageId}`);
  }, 120_000);
});
