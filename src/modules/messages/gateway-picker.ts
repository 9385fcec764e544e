import type { Redis } from "ioredis";
import { tuning } from "../../tuning.js";
import type { Presence } from "../devices/presence.js";
import type { GatewayCandidate, MessageRepository } from "./message.repository.js";

/** A gateway chosen for a message, and where to push the command. */
export type Pick =
  | { kind: "picked"; gatewayId: number; deviceId: string; taskQueue: string }
  | { kind: "none"; reason: "no_gateway" | "rate_limited"; retryAfterMs: number };

// Chooses among the candidates (in the order of their load) in one round trip. KEYS[1]: the counter
// that numbers picks; then four per candidate: its presence, its recent-failure mark, its send count
// for the current minute, the number of the last pick that took it. ARGV: the sends allowed per
// minute, 1 when only a phone running SMSGate's app (channel `sse` or `poll`) can send the message,
// 1 when only a candidate with nothing against it may take it (not tried, not polling, no recent
// failure: the picker then asks again with the whole fleet), the task queue of the instance picking
// ("" for none), then per candidate 1 when it was already tried for this message and its tier
// (candidates of one tier are equally preferred: same preference, priority and load). Connected
// candidates are ranked (tried ones last, then phones that only poll (channel `poll`: they fetch a
// message at their next call, not at once), then those that failed recently, then by tier, then
// those held by the instance picking before those held by another (its push is a frame on a
// connection here, not an activity on the other's task queue), then the one given a message least
// recently first), and the first with a send left in this minute takes one. Returns {index,
// presence value}, {0} when none is connected, {-1} when every connected one used its sends for the
// minute.
const pickScript = `
local limit = tonumber(ARGV[1])
local app = ARGV[2] == '1'
local strict = ARGV[3] == '1'
local here = ARGV[4] .. ' '
local ranked = {}
for i = 1, (#KEYS - 1) / 4 do
  local base = 4 * (i - 1) + 1
  local held = redis.call('GET', KEYS[base + 1])
  if held and app and not (string.find(held, ' sse ', 1, true) or string.find(held, ' poll ', 1, true)) then
    held = false
  end
  if held then
    local rank = tonumber(ARGV[2 * i + 3]) * 4
    if string.find(held, ' poll ', 1, true) then rank = rank + 2 end
    if redis.call('EXISTS', KEYS[base + 2]) == 1 then rank = rank + 1 end
    if strict and rank > 0 then
      held = false
    else
      local last = tonumber(redis.call('GET', KEYS[base + 4]) or '0')
      local elsewhere = (ARGV[4] ~= '' and string.sub(held, 1, #here) == here) and 0 or 1
      ranked[#ranked + 1] = {rank, tonumber(ARGV[2 * i + 4]), elsewhere, last, i, held}
    end
  end
end
if #ranked == 0 then return {0} end
table.sort(ranked, function(a, b)
  for k = 1, 5 do if a[k] ~= b[k] then return a[k] < b[k] end end
  return false
end)
for _, candidate in ipairs(ranked) do
  local base = 4 * (candidate[5] - 1) + 1
  local sent = redis.call('INCR', KEYS[base + 3])
  if sent == 1 then redis.call('EXPIRE', KEYS[base + 3], 120) end
  if sent <= limit then
    redis.call('SET', KEYS[base + 4], redis.call('INCR', KEYS[1]), 'EX', 86400)
    return {candidate[5], candidate[6]}
  end
  redis.call('DECR', KEYS[base + 3])
end
return {-1}
`;

/** The script as a command of the Redis client (sent once, then called by its hash). */
type PickCommand = (numberOfKeys: number, ...args: (string | number)[]) => Promise<[number, string?]>;

/**
 * Chooses the gateway for a message: active, online and connected, and its account's when an SMSGate
 * account sent it (another account's phone never gets it); the preferred one first, then by
 * priority and fewest messages in flight; among equals, the one given a message least recently (so
 * that idle phones share the traffic instead of filling one after another); gateways that failed
 * recently or were already tried for this message last; among equals, one held by this instance
 * first; never one that has used its sends for the current minute.
 */
export class GatewayPicker {
  /** Where the next pick's window of the fleet starts (after this gateway id). */
  private cursor = 0;

  constructor(
    private readonly repository: MessageRepository,
    private readonly redis: Redis,
    private readonly presence: Presence,
    private readonly options: {
      sendsPerMinute: number;
      failureCooldownSeconds: number;
      /** This instance's task queue for pushes: among equals, a phone held here is taken first. */
      localTaskQueue?: string;
    },
  ) {
    redis.defineCommand("smsgwPickGateway", { lua: pickScript });
  }

  /** Marks a gateway as having failed a message, so others are preferred for a while. */
  async noteFailure(gatewayId: number): Promise<void> {
    if (this.options.failureCooldownSeconds > 0) {
      await this.redis.set(`smsgw:gwfail:${gatewayId}`, "1", "EX", this.options.failureCooldownSeconds);
    }
  }

  /** Whether the gateway is connected to some instance now (its presence, one Redis read). */
  async connected(gatewayId: number): Promise<boolean> {
    return (await this.presence.taskQueues([gatewayId])).has(gatewayId);
  }

  /** A gateway's device id and the task queue of the instance holding it ("" when none does). */
  async locate(gatewayId: number): Promise<{ deviceId: string; taskQueue: string }> {
    const [deviceId, queues] = await Promise.all([
      this.repository.deviceIdOf(gatewayId),
      this.presence.taskQueues([gatewayId]),
    ]);
    return { deviceId: deviceId ?? "", taskQueue: queues.get(gatewayId) ?? "" };
  }

  /**
   * `app`: only a phone running SMSGate's app may take it; `expedited`: a phone's sends per minute do
   * not hold it back (SMSGate's priority 100 and above).
   */
  async pick(input: {
    /** The message (an SMSGate account's goes to that account's gateways only); unset: any gateway. */
    messageId?: string;
    preferredGatewayId: number | null;
    triedGatewayIds: number[];
    app?: boolean;
    expedited?: boolean;
  }): Promise<Pick> {
    // A window of the fleet first (its cost does not grow with the fleet); the whole fleet only when
    // no gateway of the window can take it (none connected, all used their sends, all tried).
    const size = tuning.pickWindow.value;
    const window = await this.repository.gatewayWindow(input.preferredGatewayId, this.cursor, size, input.messageId);
    // None online and active (the window always holds one of the highest priority when any is).
    if (window.length === 0) return { kind: "none", reason: "no_gateway", retryAfterMs: 0 };
    // The next pick's window starts after this one: equals take turns over the whole fleet.
    this.cursor = window.at(-1)?.id ?? 0;
    const untried = window.filter((row) => !input.triedGatewayIds.includes(row.id));
    // Only one with nothing against it (not polling, no recent failure): one that has is passed over
    // for a better one elsewhere in the fleet, if there is one.
    const picked = untried.length === 0 ? undefined : await this.pickAmong(untried, input, true);
    if (picked?.kind === "picked") return picked;
    return this.pickAmong(
      await this.repository.gatewaysByLoad(input.preferredGatewayId, input.messageId),
      input,
      false,
    );
  }

  /**
   * Picks among `rows` (in their order of preference) in one Redis call; `strict`: only one that was
   * not tried, does not only poll and did not fail recently.
   */
  private async pickAmong(
    rows: GatewayCandidate[],
    input: { triedGatewayIds: number[]; app?: boolean; expedited?: boolean },
    strict: boolean,
  ): Promise<Pick> {
    if (rows.length === 0) return { kind: "none", reason: "no_gateway", retryAfterMs: 0 };
    const minute = Math.floor(Date.now() / 60_000);
    const keys = [
      "smsgw:gwpicks",
      ...rows.flatMap((row) => [
        this.presence.key(row.id),
        `smsgw:gwfail:${row.id}`,
        `smsgw:gwrate:${row.id}:${minute}`,
        `smsgw:gwlast:${row.id}`,
      ]),
    ];
    const ranks = rows.flatMap((row) => [input.triedGatewayIds.includes(row.id) ? 1 : 0, row.tier]);
    const pickGateway = (this.redis as unknown as { smsgwPickGateway: PickCommand }).smsgwPickGateway;
    const [index, held] = await pickGateway.call(
      this.redis,
      keys.length,
      ...keys,
      input.expedited === true ? Number.MAX_SAFE_INTEGER : this.options.sendsPerMinute,
      input.app === true ? 1 : 0,
      strict ? 1 : 0,
      this.options.localTaskQueue ?? "",
      ...ranks,
    );
    const row = rows[index - 1];
    if (row !== undefined) {
      return { kind: "picked", gatewayId: row.id, deviceId: row.device_id, taskQueue: held?.split(" ")[0] ?? "" };
    }
    if (index === 0) return { kind: "none", reason: "no_gateway", retryAfterMs: 0 };
    return { kind: "none", reason: "rate_limited", retryAfterMs: (minute + 1) * 60_000 - Date.now() + 50 };
  }
}
