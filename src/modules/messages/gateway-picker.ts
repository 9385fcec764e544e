import type { Redis } from "ioredis";
import type { Presence } from "../devices/presence.js";
import type { MessageRepository } from "./message.repository.js";

/** A gateway chosen for a message, and where to push the command. */
export type Pick =
  | { kind: "picked"; gatewayId: number; deviceId: string; taskQueue: string }
  | { kind: "none"; reason: "no_gateway" | "rate_limited"; retryAfterMs: number };

// Takes one send slot in a gateway's current minute, or none when it is full.
const reserveScript = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], 120) end
if n > tonumber(ARGV[1]) then redis.call('DECR', KEYS[1]) return 0 end
return 1
`;

/**
 * Chooses the gateway for a message: active, online and connected; the preferred one first, then by
 * priority and fewest messages in flight; gateways that failed recently or were already tried for
 * this message last; never one that has used its sends for the current minute.
 */
export class GatewayPicker {
  constructor(
    private readonly repository: MessageRepository,
    private readonly redis: Redis,
    private readonly presence: Presence,
    private readonly options: { sendsPerMinute: number; failureCooldownSeconds: number },
  ) {}

  /** Marks a gateway as having failed a message, so others are preferred for a while. */
  async noteFailure(gatewayId: number): Promise<void> {
    if (this.options.failureCooldownSeconds > 0) {
      await this.redis.set(`smsgw:gwfail:${gatewayId}`, "1", "EX", this.options.failureCooldownSeconds);
    }
  }

  /** A gateway's device id and the task queue of the instance holding it ("" when none does). */
  async locate(gatewayId: number): Promise<{ deviceId: string; taskQueue: string }> {
    const [deviceId, queues] = await Promise.all([
      this.repository.deviceIdOf(gatewayId),
      this.presence.taskQueues([gatewayId]),
    ]);
    return { deviceId: deviceId ?? "", taskQueue: queues.get(gatewayId) ?? "" };
  }

  async pick(input: { preferredGatewayId: number | null; triedGatewayIds: number[] }): Promise<Pick> {
    const rows = await this.repository.gatewaysByLoad(input.preferredGatewayId);
    const queues = await this.presence.taskQueues(rows.map((row) => row.id));
    const connected = rows.filter((row) => queues.has(row.id));
    if (connected.length === 0) return { kind: "none", reason: "no_gateway", retryAfterMs: 0 };
    const failed = await this.redis.mget(connected.map((row) => `smsgw:gwfail:${row.id}`));
    const rank = (row: { id: number }, i: number) =>
      (input.triedGatewayIds.includes(row.id) ? 2 : 0) + (failed[i] === null ? 0 : 1);
    const ordered = connected
      .map((row, i) => ({ row, rank: rank(row, i), i }))
      .sort((a, b) => a.rank - b.rank || a.i - b.i);
    const minute = Math.floor(Date.now() / 60_000);
    for (const { row } of ordered) {
      const reserved = await this.redis.eval(
        reserveScript,
        1,
        `smsgw:gwrate:${row.id}:${minute}`,
        this.options.sendsPerMinute,
      );
      if (reserved === 1) {
        return { kind: "picked", gatewayId: row.id, deviceId: row.device_id, taskQueue: queues.get(row.id) ?? "" };
      }
    }
    return { kind: "none", reason: "rate_limited", retryAfterMs: (minute + 1) * 60_000 - Date.now() + 50 };
  }
}
