import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ensureSchedules } from "../../src/temporal/schedules.js";
import { createWorker } from "../../src/temporal/worker.js";
import { gatewayHealthWorkflow } from "../../workflows/index.js";
import { registeredGateway, startServer, testConfig } from "../helpers.js";

let server: Awaited<ReturnType<typeof startServer>>;

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => server.stop());

async function setHeartbeat(deviceId: string, secondsAgo: number): Promise<void> {
  await server.deps.orm.em
    .getConnection()
    .execute(
      "update gateways set status = 'online', last_heartbeat_at = now() - make_interval(secs => ?) where device_id = ?",
      [secondsAgo, deviceId],
    );
}

describe("the gateway health workflow on a real Temporal dev server", () => {
  it("marks gateways without a recent heartbeat offline and leaves the others online", async () => {
    const stale = await registeredGateway(server);
    const fresh = await registeredGateway(server);
    await setHeartbeat(stale.deviceId, 600);
    await setHeartbeat(fresh.deviceId, 5);

    const taskQueue = `test-${randomUUID()}`;
    const worker = await createWorker(server.deps, {
      taskQueue,
      workflowBundle: { code: inject("workflowBundleCode") },
    });
    const result = await worker.runUntil(
      server.deps.temporal.workflow.execute(gatewayHealthWorkflow, {
        taskQueue,
        workflowId: `test-gateway-health-${randomUUID()}`,
        args: [{ heartbeatTimeoutSeconds: 120 }],
      }),
    );
    expect(result.markedOffline).toContain(stale.deviceId);
    expect(result.markedOffline).not.toContain(fresh.deviceId);
    expect((await server.deps.gateways.findByDeviceId(stale.deviceId)).status).toBe("offline");
    expect((await server.deps.gateways.findByDeviceId(fresh.deviceId)).status).toBe("online");
  });

  it("is scheduled every minute with overlapping runs skipped, and re-creating the schedule updates it", async () => {
    const config = testConfig({
      TEMPORAL_TASK_QUEUE: `schedule-${randomUUID()}`,
      GATEWAY_HEARTBEAT_TIMEOUT_SECONDS: "90",
    });
    await ensureSchedules(server.deps.temporal, config);
    await ensureSchedules(server.deps.temporal, config);
    const description = await server.deps.temporal.schedule.getHandle("smsgw-gateway-health").describe();
    expect(description.spec.intervals?.[0]?.every).toBe(60_000);
    expect(description.policies.overlap).toBe("SKIP");
    expect(description.action).toMatchObject({
      workflowType: "gatewayHealthWorkflow",
      taskQueue: config.temporalTaskQueue,
      args: [{ heartbeatTimeoutSeconds: 90 }],
    });
  });
});
