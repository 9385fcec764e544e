import { Redis, type RedisOptions } from "ioredis";

/**
 * How to reach Redis, from `REDIS_URL`:
 *
 * - `redis://[[user]:password@]host:port[/db]` (or `rediss://` for TLS): one server;
 * - `redis+sentinel://[[user]:password@]host:port[,host:port…]/primary-name[/db][?sentinel_password=…]`:
 *   the primary that Redis's Sentinels name, found again after a failover. The password is the
 *   primary's (and its replicas'); the Sentinels' own, if they have one, is `sentinel_password`.
 *
 * Throws a message fit for the operator when the URL is neither.
 */
export function redisOptions(url: string): RedisOptions {
  // URL does not take a list of hosts: a Sentinel URL's list is read apart, and a placeholder stands for it.
  const sentinelUrl = /^redis\+sentinel:\/\/(?:([^@/]*)@)?([^/?#]*)(.*)$/.exec(url);
  let parsed: URL;
  try {
    const userinfo = sentinelUrl?.[1] === undefined ? "" : `${sentinelUrl[1]}@`;
    parsed = new URL(sentinelUrl === null ? url : `redis+sentinel://${userinfo}sentinels${sentinelUrl[3] ?? ""}`);
  } catch {
    throw new Error(`REDIS_URL is not a URL: "${url}"`);
  }
  const auth = {
    ...(parsed.username === "" ? {} : { username: decodeURIComponent(parsed.username) }),
    ...(parsed.password === "" ? {} : { password: decodeURIComponent(parsed.password) }),
  };
  if (parsed.protocol === "redis:" || parsed.protocol === "rediss:") {
    const db = parsed.pathname.replace(/^\//, "");
    if (db !== "" && !/^\d+$/.test(db)) throw new Error(`REDIS_URL names database "${db}": it must be a number`);
    return {
      host: parsed.hostname === "" ? "127.0.0.1" : parsed.hostname.replace(/^\[|\]$/g, ""),
      port: parsed.port === "" ? 6379 : Number(parsed.port),
      db: db === "" ? 0 : Number(db),
      ...auth,
      ...(parsed.protocol === "rediss:" ? { tls: {} } : {}),
    };
  }
  if (sentinelUrl !== null) {
    const sentinels = (sentinelUrl[2] ?? "").split(",").map((entry) => {
      const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(entry.trim());
      if (match === null) throw new Error(`REDIS_URL names a Sentinel "${entry}": expected host:port`);
      return {
        host: (match[1] ?? "").replace(/^\[|\]$/g, ""),
        port: match[2] === undefined ? 26379 : Number(match[2]),
      };
    });
    const [name, db, extra] = parsed.pathname.replace(/^\//, "").split("/");
    if (name === undefined || name === "")
      throw new Error(
        "REDIS_URL with redis+sentinel:// needs the primary's name: redis+sentinel://host:26379/mymaster",
      );
    if (extra !== undefined || (db !== undefined && db !== "" && !/^\d+$/.test(db)))
      throw new Error(`REDIS_URL's path must be /primary-name[/db], not "${parsed.pathname}"`);
    const sentinelPassword = parsed.searchParams.get("sentinel_password");
    return {
      sentinels,
      name: decodeURIComponent(name),
      db: db === undefined || db === "" ? 0 : Number(db),
      ...auth,
      ...(sentinelPassword === null ? {} : { sentinelPassword }),
      // The Sentinels tell of a failover as it happens, rather than when a command to the old primary fails.
      failoverDetector: true,
    };
  }
  throw new Error(`REDIS_URL must start with redis://, rediss:// or redis+sentinel://, not "${parsed.protocol}//"`);
}

/**
 * A Redis client for `REDIS_URL`. A primary that became a replica (after a failover, the old one
 * comes back as one) answers writes with READONLY: the client then reconnects, and finds the
 * primary again, rather than failing every write.
 */
export function openRedis(url: string, options: RedisOptions = {}): Redis {
  return new Redis({
    ...redisOptions(url),
    reconnectOnError: (error) => (error.message.startsWith("READONLY") ? 2 : false),
    ...options,
  });
}
