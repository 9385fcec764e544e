import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Presence } from "../src/modules/devices/presence.js";
import { GatewayPicker } from "../src/modules/messages/index.js";
import type { Running } from "../src/serve.js";
import { isolate, registeredGateway, startServer } from "./helpers.js";

// The picker against real PostgreSQL (the gateways and their load) and Redis (presence, recent
// failures and each gateway's sends in the current minute), which it reads and reserves in one call.
describe("GatewayPicker", () => {
  let server: Running & { url: string };
  let presence: Presence;
  const gateways: number[] = [];

  /** Three active online gateways, in priority order; `connected` of them are connected. */
  async function fleet(connected: number): Promise<void> {
    for (const [i, id] of gateways.entries()) {
      await server.deps.orm.em
        .getConnection()
        .execute("update gateways set active = true, status = 'online', priority = ? where id = ?", [10 - i, id]);
      if (i < connected) await presence.hold(id, `queue-${i}`, `connection-${i}`, "stream");
    }
  }

  const picker = (sendsPerMinute = 100, localTaskQueue?: string) =>
    new GatewayPicker(server.deps.messageRepository, server.deps.redis, presence, {
      sendsPerMinute,
      failureCooldownSeconds: 60,
      ...(localTaskQueue === undefined ? {} : { localTaskQueue }),
    });

  /** How many of `picks` picks (of a message with no preference) each gateway took. */
  async function picksOf(chooser: GatewayPicker, picks: number): Promise<Map<number, number>> {
    const counts = new Map<number, number>();
    for (let i = 0; i < picks; i++) {
      const pick = await chooser.pick({ preferredGatewayId: null, triedGatewayIds: [] });
      if (pick.kind !== "picked") throw new Error(`expected a pick, got ${pick.kind}`);
      counts.set(pick.gatewayId, (counts.get(pick.gatewayId) ?? 0) + 1);
    }
    return counts;
  }

  beforeAll(async () => {
    server = await startServer();
    presence = new Presence(server.deps.redis, 60);
    for (let i = 0; i < 3; i++) gateways.push((await registeredGateway(server)).id);
  });
  afterAll(async () => {
    await server.deps.redis.del(
      ...gateways.flatMap((id) => [presence.key(id), `smsgw:gwfail:${id}`, `smsgw:gwlast:${id}`]),
    );
    await server.stop();
  });
  beforeEach(async () => {
    await isolate(server);
    const keys = await server.deps.redis.keys("smsgw:gwrate:*");
    await server.deps.redis.del(
      ...gateways.flatMap((id) => [presence.key(id), `smsgw:gwfail:${id}`, `smsgw:gwlast:${id}`]),
      ...keys,
    );
  });

  it("takes the connected gateway of highest priority, with the task queue of the instance holding it", async () => {
    await fleet(3);
    const pick = await picker().pick({ preferredGatewayId: null, triedGatewayIds: [] });
    expect(pick).toMatchObject({ kind: "picked", gatewayId: gateways[0], taskQueue: "queue-0" });
  });

  it("prefers a phone connected now to one that only polls, and takes the polling one when it is alone", async () => {
    await fleet(0);
    const [first, second] = gateways as [number, number];
    // The phone of highest priority only polls (the SMSGate app without its events stream).
    await presence.hold(first, "queue-0", "connection-0", "poll");
    await presence.hold(second, "queue-1", "connection-1", "sse");
    expect(await picker().pick({ preferredGatewayId: null, triedGatewayIds: [] })).toMatchObject({
      gatewayId: second,
    });
    await server.deps.redis.del(presence.key(second));
    expect(await picker().pick({ preferredGatewayId: null, triedGatewayIds: [] })).toMatchObject({
      gatewayId: first,
      taskQueue: "queue-0",
    });
  });

  it("gives a message only a phone running SMSGate's app can send to one of those (sse or poll), else none", async () => {
    await fleet(0);
    const [first, second, third] = gateways as [number, number, number];
    await presence.hold(first, "queue-0", "connection-0", "stream");
    await presence.hold(second, "queue-1", "connection-1", "cable");
    const app = { preferredGatewayId: null, triedGatewayIds: [], app: true };
    expect(await picker().pick(app)).toMatchObject({ kind: "none", reason: "no_gateway" });
    await presence.hold(third, "queue-2", "connection-2", "poll");
    expect(await picker().pick(app)).toMatchObject({ kind: "picked", gatewayId: third });
    await presence.hold(second, "queue-1", "connection-1", "sse");
    expect(await picker().pick(app)).toMatchObject({ kind: "picked", gatewayId: second });
    // Any other message still takes the phone of highest priority.
    expect(await picker().pick({ preferredGatewayId: null, triedGatewayIds: [] })).toMatchObject({ gatewayId: first });
  });

  it("lets an expedited message (SMSGate priority 100 and above) past a phone's sends per minute", async () => {
    await fleet(1);
    const limited = picker(1);
    expect(await limited.pick({ preferredGatewayId: null, triedGatewayIds: [] })).toMatchObject({ kind: "picked" });
    expect(await limited.pick({ preferredGatewayId: null, triedGatewayIds: [] })).toMatchObject({
      kind: "none",
      reason: "rate_limited",
    });
    expect(await limited.pick({ preferredGatewayId: null, triedGatewayIds: [], expedited: true })).toMatchObject({
      kind: "picked",
      gatewayId: gateways[0],
    });
  });

  it("passes over gateways that are online in the database but connected nowhere", async () => {
    await fleet(0);
    expect(await picker().pick({ preferredGatewayId: null, triedGatewayIds: [] })).toMatchObject({
      kind: "none",
      reason: "no_gateway",
    });
    await presence.hold(gateways[2] as number, "queue-2", "connection-2", "cable");
    expect(await picker().pick({ preferredGatewayId: null, triedGatewayIds: [] })).toMatchObject({
      kind: "picked",
      gatewayId: gateways[2],
      taskQueue: "queue-2",
    });
  });

  it("prefers the message's own gateway, and puts tried and recently failed gateways last", async () => {
    await fleet(3);
    const [first, second, third] = gateways as [number, number, number];
    expect(await picker().pick({ preferredGatewayId: third, triedGatewayIds: [] })).toMatchObject({
      gatewayId: third,
    });
    await picker().noteFailure(first);
    expect(await picker().pick({ preferredGatewayId: null, triedGatewayIds: [] })).toMatchObject({
      gatewayId: second,
    });
    // Tried counts for more than a recent failure.
    expect(await picker().pick({ preferredGatewayId: null, triedGatewayIds: [second, third] })).toMatchObject({
      gatewayId: first,
    });
  });

  it("rotates among equally loaded gateways instead of filling the lowest id first", async () => {
    await fleet(3);
    // Equal priority: the three are equals, and each pick goes to the one given a message least recently.
    const sql = server.deps.orm.em.getConnection();
    await sql.execute("update gateways set priority = 1 where id in (?, ?, ?)", gateways);
    const generous = picker(100_000);
    const counts = await picksOf(generous, 300);
    expect(gateways.map((id) => counts.get(id))).toEqual([100, 100, 100]);
    // A higher priority still wins over rotation.
    await sql.execute("update gateways set priority = 5 where id = ?", [gateways[1]]);
    for (let i = 0; i < 3; i++) {
      expect(await generous.pick({ preferredGatewayId: null, triedGatewayIds: [] })).toMatchObject({
        gatewayId: gateways[1],
      });
    }
  });

  it("takes, among equals, a phone held by its own instance, and a better phone elsewhere all the same", async () => {
    await fleet(3);
    const sql = server.deps.orm.em.getConnection();
    await sql.execute("update gateways set priority = 1 where id in (?, ?, ?)", gateways);
    // The instance holding gateway 1 (`queue-1`) pushes to it itself: it takes every pick while equal.
    const counts = await picksOf(picker(100_000, "queue-1"), 30);
    expect(gateways.map((id) => counts.get(id) ?? 0)).toEqual([0, 30, 0]);
    // A phone of a higher priority elsewhere is still taken first.
    await sql.execute("update gateways set priority = 5 where id = ?", [gateways[2]]);
    expect(await picker(100_000, "queue-1").pick({ preferredGatewayId: null, triedGatewayIds: [] })).toMatchObject({
      gatewayId: gateways[2],
      taskQueue: "queue-2",
    });
    // With its own phone at its sends for the minute, the others take the rest.
    await sql.execute("update gateways set priority = 1 where id = ?", [gateways[2]]);
    const minuteKeys = await server.deps.redis.keys("smsgw:gwrate:*");
    if (minuteKeys.length > 0) await server.deps.redis.del(...minuteKeys);
    const capped = await picksOf(picker(10, "queue-1"), 20);
    expect(gateways.map((id) => capped.get(id) ?? 0)).toEqual([5, 10, 5]);
  });

  it("shares the work over a fleet larger than the window it weighs at a time, and still finds a lone connected phone", async () => {
    const sql = server.deps.orm.em.getConnection();
    const suffix = Date.now().toString(36);
    const rows = await sql.execute<{ id: number }[]>(
      `insert into gateways (device_id, name, status, active, priority)
       select 'window-' || ? || '-' || n, 'window ' || n, 'online', true, 1 from generate_series(1, 100) n returning id`,
      [suffix],
    );
    const fleetIds = rows.map((row) => row.id);
    try {
      for (const id of fleetIds) await presence.hold(id, "queue-w", `connection-${id}`, "stream");
      const generous = picker(100_000);
      const counts = await picksOf(generous, 200);
      // Every phone of the hundred was given some, none a large share.
      expect(fleetIds.filter((id) => !counts.has(id))).toEqual([]);
      expect(Math.max(...counts.values())).toBeLessThanOrEqual(4);
      // Only one of them connected: found wherever it stands in the fleet.
      await server.deps.redis.del(...fleetIds.map((id) => presence.key(id)));
      const lone = fleetIds[77] as number;
      await presence.hold(lone, "queue-w", "connection-lone", "stream");
      for (let i = 0; i < 3; i++) {
        expect(await generous.pick({ preferredGatewayId: null, triedGatewayIds: [] })).toMatchObject({
          kind: "picked",
          gatewayId: lone,
        });
      }
    } finally {
      await server.deps.redis.del(
        ...fleetIds.flatMap((id) => [presence.key(id), `smsgw:gwlast:${id}`, `smsgw:gwfail:${id}`]),
      );
      await sql.execute("delete from gateways where device_id like ?", [`window-${suffix}-%`]);
    }
  });

  it("never gives a gateway more than its sends per minute, and says when the next minute starts", async () => {
    await fleet(2);
    // All in one minute: not in its last two seconds.
    const left = 60_000 - (Date.now() % 60_000);
    if (left < 2000) await new Promise((resolve) => setTimeout(resolve, left + 50));
    const limited = picker(2);
    const picks = [];
    for (let i = 0; i < 4; i++) picks.push(await limited.pick({ preferredGatewayId: null, triedGatewayIds: [] }));
    expect(picks.map((pick) => (pick.kind === "picked" ? pick.gatewayId : null))).toEqual([
      gateways[0],
      gateways[0],
      gateways[1],
      gateways[1],
    ]);
    const full = await limited.pick({ preferredGatewayId: null, triedGatewayIds: [] });
    expect(full).toMatchObject({ kind: "none", reason: "rate_limited" });
    if (full.kind !== "none") throw new Error("expected none");
    expect(full.retryAfterMs).toBeGreaterThan(0);
    expect(full.retryAfterMs).toBeLessThanOrEqual(60_050);
  });
});
