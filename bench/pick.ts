// npm run bench:pick: what choosing a gateway for a message costs as the fleet grows.
//
// For each fleet size (BENCH_PICK_FLEETS, default "10,1000,10000"), a fresh database with that many
// active online gateways of one priority, every one connected (its presence in Redis) and 1,000
// messages in flight spread over a tenth of them, then BENCH_PICKS picks (default 2,000), one at a
// time, as a message's first attempt makes them. It prints, per fleet, the latency p50/p99 and the CPU
// per pick of smsgw's process and of PostgreSQL and Redis: with the window the picker reads
// (`tuning.pickWindow`) and, as the reference in the same run, the whole fleet read and ranked at
// each pick (what every pick did before the window, and what a pick still does when no gateway of the
// window can take the message). The floor: a bare `select 1` and Redis PING round trip.
import pg from "pg";
import { ensureDatabase, migrate, openOrm } from "../src/db/orm.js";
import { Presence } from "../src/modules/devices/presence.js";
import { GatewayPicker, MessageRepository } from "../src/modules/messages/index.js";
import { openRedis } from "../src/shared/redis.js";
import { tuning } from "../src/tuning.js";
import { latencyLine, machine, pidsNamed, processCpuMs, runBench } from "./harness.js";

const fleets = (process.env.BENCH_PICK_FLEETS ?? "10,1000,10000").split(",").map(Number);
const picks = Number(process.env.BENCH_PICKS ?? 2000);
const databaseUrl = "postgresql://postgres@127.0.0.1:5432/smsgw_bench_pick";
const redisUrl = "redis://127.0.0.1:6379/5";

/** CPU (ms) of this process, of every PostgreSQL backend and of Redis, while `work` runs. */
async function measured(work: () => Promise<void>): Promise<{ self: number; postgres: number; redis: number }> {
  const cpu = () => ({
    self: process.cpuUsage().user / 1000 + process.cpuUsage().system / 1000,
    postgres: pidsNamed("postgres").reduce((sum, pid) => sum + processCpuMs(pid), 0),
    redis: pidsNamed("redis-server").reduce((sum, pid) => sum + processCpuMs(pid), 0),
  });
  const before = cpu();
  await work();
  const after = cpu();
  return {
    self: after.self - before.self,
    postgres: after.postgres - before.postgres,
    redis: after.redis - before.redis,
  };
}

async function timed(label: string, once: () => Promise<unknown>): Promise<string> {
  const latencies: number[] = [];
  const cpu = await measured(async () => {
    for (let i = 0; i < picks; i++) {
      const start = performance.now();
      await once();
      latencies.push(performance.now() - start);
    }
  });
  const per = (ms: number) => ((ms * 1000) / picks).toFixed(0);
  return `  ${latencyLine(label, latencies)}   CPU per pick: smsgw ${per(cpu.self)} µs, PostgreSQL ${per(cpu.postgres)} µs, Redis ${per(cpu.redis)} µs`;
}

async function main(): Promise<void> {
  await ensureDatabase(databaseUrl);
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  const redis = openRedis(redisUrl, {});
  const lines = [
    `conditions: ${machine()}; PostgreSQL 15 and Redis 7 on localhost; ${picks} picks one after another per fleet; pickWindow ${tuning.pickWindow.value}`,
  ];
  try {
    for (const fleet of fleets) {
      await admin.query("drop schema public cascade; create schema public;");
      const orm = await openOrm(databaseUrl);
      try {
        await migrate(orm);
        await redis.flushdb();
        const { rows } = await admin.query<{ id: number }>(
          `insert into gateways (device_id, name, status, active, priority)
           select 'pick-' || n, 'pick ' || n, 'online', true, 1 from generate_series(1, $1::int) n returning id`,
          [fleet],
        );
        await admin.query(
          `insert into messages (id, recipient, body, status, expires_at, gateway_id)
           select 'inflight' || n, '+14155550100', 'x', 'dispatched', now() + interval '1 day', ($2::int[])[1 + n % greatest(1, $1::int / 10)]
             from generate_series(1, 1000) n`,
          [fleet, rows.map((row) => row.id)],
        );
        await admin.query("analyze");
        const presence = new Presence(redis, 3600);
        for (const { id } of rows) await presence.hold(id, "bench-pick", `connection-${id}`, "stream");
        const repository = new MessageRepository(orm.em);
        const picker = new GatewayPicker(repository, redis, presence, {
          sendsPerMinute: 1_000_000,
          failureCooldownSeconds: 60,
        });
        const input = { preferredGatewayId: null, triedGatewayIds: [] };
        const sql = orm.em.getConnection();
        lines.push(`${fleet} online gateways:`);
        lines.push(await timed("floor: select 1 + PING", () => Promise.all([sql.execute("select 1"), redis.ping()])));
        lines.push(await timed("pick (window)         ", () => picker.pick(input)));
        // The reference: the whole fleet read and ranked, as every pick did before the window.
        type Among = (rows: unknown[], input: object, strict: boolean) => Promise<unknown>;
        const among = (picker as unknown as { pickAmong: Among }).pickAmong.bind(picker);
        lines.push(
          await timed("whole fleet (reference)", async () =>
            among(await repository.gatewaysByLoad(null), input, false),
          ),
        );
      } finally {
        await orm.close();
      }
    }
  } finally {
    await admin.end();
    redis.disconnect();
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

runBench(main);
