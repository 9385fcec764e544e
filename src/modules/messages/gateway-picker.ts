import type { Redis } from "ioredis";
import type { Presence } from "../devices/presence.js";
import type { MessageRepository } from "./message.repository.js";

/** A gateway chosen for a message, and where to push the command. */
export type Pick =
  | { kind: "picked"; gatewayId: number; deviceId: string; taskQueue: string }
  | { kind: "none"; reason: "no_gateway" | "rate_limited"; retryAfterMs: number };

// Chooses among the candidates (in the order of their load) in one round trip. KEYS, three per
// candidate: its presence, its recent-failure mark, its send count for the current minute. ARGV: the
// sends allowed per minute, then per candidate 1 when it was already tried for this message.
// Connected candidates are ranked (tried ones last, then those that failed recently), and the first
// with a send left in this minute takes one. Returns {index, presence value}, {0} when none is
// connected, {-1} when every connected one used its sends for the minute.
const pickScript = `
local limit = tonumber(ARGV[1])
local ranked = {}
for i = 1, #ARGV - 1 do
  local held = redis.call('GET', KEYS[3 * i - 2])
  if held then
    local rank = tonumber(ARGV[i + 1]) * 2
    if redis.call('EXISTS', KEYS[3 * i - 1]) == 1 then rank = rank + 1 end
    ranked[#ranked + 1] = {rank, i, held}
  end
end
if #ranked == 0 then return {0} end
table.sort(ranked, function(a, b) if a[1] ~= b[1] then return a[1] < b[1] end return a[2] < b[2] end)
for _, candidate in ipairs(ranked) do
  local key = KEYS[3 * candidate[2]]
  local sent = redis.call('INCR', key)
  if sent == 1 then redis.call('EXPIRE', key, 120) end
  if sent <= limit then return {candidate[2], candidate[3]} end
  redis.call('DECR', key)
end
return {-1}
`;

/** The script as a command of the Redis client (sent once, then called by its hash). */
type PickCommand = (numberOfKeys: number, ...args: (string | number)[]) => Promise<[number, string?]>;

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
  ) {
    redis.defineCommand("smsgwPickGateway", { lua: pickScript });
  }

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
    if (rows.length === 0) return { kind: "none", reason: "no_gateway", retryAfterMs: 0 };
    const minute = Math.floor(Date.now() / 60_000);
    const keys = rows.flatMap((row) => [
      this.presence.key(row.id),
      `smsgw:gwfail:${row.id}`,
      `smsgw:gwrate:${row.id}:${minute}`,
    ]);
    const tried = rows.map((row) => (input.triedGatewayIds.includes(row.id) ? 1 : 0));
    const pickGateway = (this.redis as unknown as { smsgwPickGateway: PickCommand }).smsgwPickGateway;
    const [index, held] = await pickGateway.call(
      this.redis,
      keys.length,
      ...keys,
      this.options.sendsPerMinute,
      ...tried,
    );
    const row = rows[index - 1];
    if (row !== undefined) {
      return { kind: "picked", gatewayId: row.id, deviceId: row.device_id, taskQueue: held?.split(" ")[0] ?? "" };
    }
    if (index === 0) return { kind: "none", reason: "no_gateway", retryAfterMs: 0 };
    return { kind: "none", reason: "rate_limited", retryAfterMs: (minute + 1) * 60_000 - Date.now() + 50 };
  }
}
