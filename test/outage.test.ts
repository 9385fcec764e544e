import { ServiceError } from "@temporalio/client";
import { Redis } from "ioredis";
import pg from "pg";
import { describe, expect, inject, it } from "vitest";
import { outageOf } from "../src/shared/outage.js";

/** Errors as the real clients raise them: an outage is told apart from a fault of the request or the code. */
async function thrown(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error("nothing was thrown");
}

describe("telling an outage from a fault", () => {
  it("names PostgreSQL when its connection is refused, and not for a statement that is wrong", async () => {
    const refused = await thrown(async () => {
      const client = new pg.Client({ connectionString: "postgresql://postgres@127.0.0.1:1/none" });
      await client.connect();
    });
    expect(outageOf(refused)).toBe("database");
    const client = new pg.Client({ connectionString: inject("databaseUrl") });
    await client.connect();
    try {
      expect(outageOf(await thrown(() => client.query("select * from no_such_table")))).toBeUndefined();
      expect(outageOf(await thrown(() => client.query("select 1/0")))).toBeUndefined();
    } finally {
      await client.end();
    }
  });

  it("names Redis when it does not answer", async () => {
    const redis = new Redis("redis://127.0.0.1:1", { maxRetriesPerRequest: 1 });
    redis.on("error", () => undefined);
    try {
      expect(outageOf(await thrown(() => redis.get("key")))).toBe("redis");
    } finally {
      redis.disconnect();
    }
  });

  it("names Temporal for a call that found no server, and nothing for a code error", () => {
    const unavailable = new ServiceError("Failed to start workflow", {
      cause: Object.assign(new Error("14 UNAVAILABLE: connection refused"), { code: 14 }),
    });
    expect(outageOf(unavailable)).toBe("temporal");
    expect(outageOf(new TypeError("cannot read properties of undefined"))).toBeUndefined();
    expect(outageOf(new Error("anything else"))).toBeUndefined();
  });
});
