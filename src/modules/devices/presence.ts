import type { Redis } from "ioredis";

/**
 * Which server instance holds each connected gateway, in Redis with a TTL that the connection
 * refreshes. The value is the instance's Temporal task queue (where pushes to the device go), the
 * channel the device uses and the connection's id (`<task queue> <channel> <connection id>`; values
 * written before the channel was kept have no channel: `stream`, the only one then).
 */
export class Presence {
  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds: number,
  ) {}

  /** The Redis key that holds a gateway's presence (its value starts with the task queue). */
  key(gatewayId: number): string {
    return `smsgw:presence:${gatewayId}`;
  }

  /** Claims (or refreshes) the gateway for this connection. */
  async hold(gatewayId: number, taskQueue: string, connectionId: string, channel: string): Promise<void> {
    await this.redis.set(this.key(gatewayId), `${taskQueue} ${channel} ${connectionId}`, "EX", this.ttlSeconds);
  }

  /** Releases the gateway if this connection still holds it; returns whether it did. */
  async release(gatewayId: number, connectionId: string): Promise<boolean> {
    const released = await this.redis.eval(
      `local v = redis.call('GET', KEYS[1])
       if v and string.sub(v, -string.len(ARGV[1])) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
       return 0`,
      1,
      this.key(gatewayId),
      ` ${connectionId}`,
    );
    return released === 1;
  }

  /** The task queue of the instance holding each of `gatewayIds` that is connected. */
  async taskQueues(gatewayIds: number[]): Promise<Map<number, string>> {
    return this.read(gatewayIds, (parts) => parts[0] ?? "");
  }

  /** The channel (`stream` or `cable`) of each of `gatewayIds` that is connected, on any instance. */
  async channels(gatewayIds: number[]): Promise<Map<number, string>> {
    return this.read(gatewayIds, (parts) => (parts.length >= 3 ? (parts[1] ?? "stream") : "stream"));
  }

  private async read(gatewayIds: number[], pick: (parts: string[]) => string): Promise<Map<number, string>> {
    if (gatewayIds.length === 0) return new Map();
    const values = await this.redis.mget(gatewayIds.map((id) => this.key(id)));
    const held = new Map<number, string>();
    gatewayIds.forEach((id, i) => {
      const value = values[i];
      if (value) held.set(id, pick(value.split(" ")));
    });
    return held;
  }
}
