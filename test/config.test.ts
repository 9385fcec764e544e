import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ConfigError, environment, loadConfig } from "../src/config.js";
import { redisOptions } from "../src/shared/redis.js";
import { tuning } from "../src/tuning.js";

/** The variables of the manual's first configuration table, each with the default written there. */
function documented(): Map<string, string> {
  const page = readFileSync(new URL("../docs/configuration.md", import.meta.url), "utf8");
  const table = page.slice(page.indexOf("| variable |"), page.indexOf("\n\n", page.indexOf("| variable |")));
  const rows = new Map<string, string>();
  for (const line of table.split("\n").slice(2)) {
    const [names = "", defaults = ""] = line.split(" | ").map((cell) => cell.replace(/^\| /, ""));
    const values = [...defaults.matchAll(/`([^`]*)`/g)].map((match) => match[1] ?? "");
    for (const [i, name] of [...names.matchAll(/`([A-Z_]+)`/g)].map((match) => match[1] ?? "").entries()) {
      // A default written as a value (`3000`), or as words ("unset", "a file in DATA_DIR").
      rows.set(name, defaults.startsWith("unset") ? "unset" : (values[i] ?? defaults));
    }
  }
  return rows;
}

/** What the schema takes for a variable that is not set: its default, or "unset". */
function defaultOf(name: keyof typeof environment): string {
  const value: unknown = environment[name].parse(undefined);
  return value === undefined ? "unset" : String(value);
}

describe("configuration", () => {
  it("documents every variable the schema reads, and nothing it does not read", () => {
    expect([...documented().keys()].sort()).toEqual(Object.keys(environment).sort());
  });

  it("documents each variable's default as the schema has it", () => {
    const described = new Set(["PATH", "XDG_CACHE_HOME", "TEMPORAL_UI_URL", "SECRET_KEY_BASE"]);
    for (const [name, written] of documented()) {
      if (described.has(name)) continue; // defaults written in words (the shell's PATH, a file in DATA_DIR, …)
      const value = written.replace(/ \(.*\)$/, "");
      expect({ name, default: value }).toEqual({ name, default: defaultOf(name as keyof typeof environment) });
    }
  });

  it("names the variable, the rule and the value when a setting is not valid", () => {
    expect(() => loadConfig({ PORT: "x" })).toThrow(
      new ConfigError('PORT must be a whole number from 0 to 65535, not "x"'),
    );
    expect(() => loadConfig({ WEBHOOK_ALLOW_PRIVATE_TARGETS: "perhaps" })).toThrow(
      new ConfigError('WEBHOOK_ALLOW_PRIVATE_TARGETS must be true or false, not "perhaps"'),
    );
    expect(() => loadConfig({ TIME_ZONE: "Mars/Olympus" })).toThrow(/^TIME_ZONE must be an IANA time zone/);
    expect(() => loadConfig({ LOG_FORMAT: "xml" })).toThrow(/^LOG_FORMAT must be one of auto, json, pretty/);
    expect(() => loadConfig({ OTP_MESSAGE_TEMPLATE: "no code here" })).toThrow(
      /^OTP_MESSAGE_TEMPLATE must contain \{code\}/,
    );
    expect(() => loadConfig({ TLS_CERT: "cert.pem" })).toThrow(
      new ConfigError("TLS_CERT and TLS_KEY must be set together"),
    );
    expect(() => loadConfig({ REDIS_URL: "memcached://127.0.0.1:11211" })).toThrow(
      new ConfigError('REDIS_URL must start with redis://, rediss:// or redis+sentinel://, not "memcached://"'),
    );
    expect(() => loadConfig({ REDIS_URL: "redis+sentinel://127.0.0.1:26379" })).toThrow(/needs the primary's name/);
  });

  it("reads REDIS_URL as one server or as the primary a set of Sentinels names", () => {
    expect(redisOptions("redis://:s%40cret@cache.internal:6380/2")).toMatchObject({
      host: "cache.internal",
      port: 6380,
      db: 2,
      password: "s@cret",
    });
    expect(
      redisOptions("redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2,[::1]:26380/mymaster/3?sentinel_password=sp"),
    ).toEqual({
      sentinels: [
        { host: "10.0.0.1", port: 26379 },
        { host: "10.0.0.2", port: 26379 },
        { host: "::1", port: 26380 },
      ],
      name: "mymaster",
      db: 3,
      password: "pw",
      sentinelPassword: "sp",
      failoverDetector: true,
    });
  });

  it("reads an empty variable as unset, and shapes the values as the server uses them", () => {
    const config = loadConfig({
      PORT: "",
      DEFAULT_COUNTRY_CODE: "de",
      ALLOWED_ORIGINS: "https://a.example, https://b.example",
      WEBHOOK_ALLOW_PRIVATE_TARGETS: "yes",
      PUBLIC_URL: "https://sms.example.com/",
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/",
    });
    expect(config.port).toBe(3000);
    expect(config.defaultCountryCode).toBe("DE");
    expect(config.allowedOrigins).toEqual(["https://a.example", "https://b.example"]);
    expect(config.webhooks.allowPrivateTargets).toBe(true);
    expect(config.publicUrl).toBe("https://sms.example.com");
    expect(config.tracing).toEqual({ endpoint: "http://collector:4318", serviceName: "smsgw" });
    expect(config.inherited.GOMEMLIMIT).toBe(tuning.devServerMemoryLimit.value);
    expect(Object.isFrozen(config.messages)).toBe(true);
  });

  it("is the only reader of process.env among the server's sources", () => {
    const src = fileURLToPath(new URL("../src/", import.meta.url));
    const readers = readdirSync(src, { recursive: true, encoding: "utf8" })
      .filter((file) => file.endsWith(".ts") && readFileSync(join(src, file), "utf8").includes("process.env"))
      .map((file) => `src/${file}`);
    expect(readers).toEqual(["src/config.ts"]);
  });
});
