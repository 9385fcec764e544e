import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Running } from "../src/serve.js";
import { registeredGateway, startServer } from "./helpers.js";

// Heartbeats and touches of many phones at once share statements (a farm of 10,000 phones beats 333
// times a second); each phone's own answer must still be its own.
describe("liveness of many gateways at once", () => {
  let server: Running & { url: string };
  const ids: number[] = [];
  const deviceIds = new Set<string>();

  beforeAll(async () => {
    server = await startServer();
    for (let i = 0; i < 40; i++) {
      const gateway = await registeredGateway(server);
      ids.push(gateway.id);
      deviceIds.add(gateway.deviceId);
    }
  });
  afterAll(() => server.stop());

  const sql = () => server.deps.orm.em.getConnection();
  const events = async (since: Date) =>
    sql().execute<{ gateway_id: string; event: string }[]>(
      "select payload->>'gateway_id' as gateway_id, type as event from events where created_at >= ? and type like 'gateway_%'",
      [since],
    );

  it("tells each phone whether it was offline, once, when all connect together (twice over for some)", async () => {
    await sql().execute("update gateways set status = 'offline' where id = any(?::int[])", [`{${ids.join(",")}}`]);
    const half = ids.slice(0, 20);
    const touched = await Promise.all([...ids, ...half].map((id) => server.deps.gateways.touch(id)));
    // Each gateway was offline for exactly one of its touches.
    const wasOffline = new Map<number, number>();
    for (const [i, id] of [...ids, ...half].entries()) {
      if (touched[i]?.wasOffline) wasOffline.set(id, (wasOffline.get(id) ?? 0) + 1);
    }
    expect(ids.map((id) => wasOffline.get(id))).toEqual(ids.map(() => 1));
    const rows = await sql().execute<{ status: string }[]>("select status from gateways where id = any(?::int[])", [
      `{${ids.join(",")}}`,
    ]);
    expect(rows.every((row) => row.status === "online")).toBe(true);
  });

  it("records each phone's own heartbeat figures, and one gateway_offline event per phone that said so", async () => {
    const since = new Date(Date.now() - 1000);
    await Promise.all(
      ids.map((id, i) =>
        server.deps.gateways.heartbeat(id, { status: i % 2 === 0 ? "offline" : "online", batteryLevel: i }),
      ),
    );
    const rows = await sql().execute<{ id: number; status: string; battery: number }[]>(
      "select id, status, (metadata->>'battery_level')::int as battery from gateways where id = any(?::int[])",
      [`{${ids.join(",")}}`],
    );
    for (const row of rows) {
      const i = ids.indexOf(row.id);
      expect([row.status, row.battery]).toEqual([i % 2 === 0 ? "offline" : "online", i]);
    }
    const offline = (await events(since)).filter(
      (event) => event.event === "gateway_offline" && deviceIds.has(event.gateway_id),
    );
    expect(offline).toHaveLength(20);
    // A gateway that does not exist is refused alone; the others in its statement are recorded.
    const results = await Promise.allSettled([
      server.deps.gateways.heartbeat(2_000_000_000, { batteryLevel: 5 }),
      server.deps.gateways.heartbeat(ids[1] as number, { batteryLevel: 77 }),
    ]);
    expect(results.map((result) => result.status)).toEqual(["rejected", "fulfilled"]);
    const [one] = await sql().execute<{ battery: number }[]>(
      "select (metadata->>'battery_level')::int as battery from gateways where id = ?",
      [ids[1]],
    );
    expect(one?.battery).toBe(77);
  });
});
