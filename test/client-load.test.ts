import { describe, expect, it } from "vitest";
import { ClientLoad } from "../src/shared/client-load.js";

describe("ClientLoad", () => {
  it("is busy while clients keep enough requests in flight, and quiet when they do not", () => {
    let now = 1_000;
    const load = new ClientLoad(4, 250, () => now);
    for (let i = 0; i < 3; i++) load.began();
    expect(load.busy).toBe(false);
    load.began();
    expect(load.busy).toBe(true);
    expect(load.inFlight).toBe(4);
    for (let i = 0; i < 4; i++) load.ended();
    expect(load.inFlight).toBe(0);
    now += 251;
    expect(load.busy).toBe(false);
  });

  it("stays busy through a dip between waves of answers, for holdMs after the last hard moment", () => {
    let now = 1_000;
    const load = new ClientLoad(4, 250, () => now);
    for (let i = 0; i < 32; i++) load.began();
    // One insert answered all of them at once: nothing in flight until the clients send again.
    for (let i = 0; i < 32; i++) load.ended();
    now += 5;
    expect(load.busy).toBe(true);
    now += 240;
    expect(load.busy).toBe(true);
    now += 10;
    expect(load.busy).toBe(false);
  });
});
