import { describe, expect, it } from "vitest";
import { runScenario, violations } from "../chaos/scenario.js";

/**
 * The kill -9 scenario of the chaos suite (`npm run chaos` runs them all): the suite's own
 * PostgreSQL, Redis and Temporal, the server as `npm start` runs it, three simulated phones, a REST
 * burst of 500 sends; the server is killed with SIGKILL mid-burst and started again 8 s later.
 */
describe("chaos: kill -9 of the server mid-burst", () => {
  it("loses nothing it answered 202, gives no message to two phones, answers no 500", async () => {
    const result = await runScenario("kill-9", { log: (line) => console.log(line) });
    expect(violations(result), `logs kept in ${result.logs}`).toEqual([]);
    expect(result.accepted).toBe(500);
    expect(result.delivered).toBe(500);
    // The kill found messages on their way: accepted and not yet ended.
    expect(result.inFlight).toBeGreaterThan(0);
  }, 300_000);
});
