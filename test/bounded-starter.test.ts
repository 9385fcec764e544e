import { describe, expect, it } from "vitest";
import { BoundedStarter, FirstSteps } from "../src/temporal/workflow-calls.js";

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A starter whose starts take `ms` each and are recorded with the most that ran at once. */
function starter(options: { busy?: () => boolean; maxYieldMs?: number; concurrency?: number; capacity?: number }) {
  const started: string[] = [];
  const dropped: number[] = [];
  let running = 0;
  let peak = 0;
  const subject = new BoundedStarter(
    options.concurrency ?? 8,
    options.capacity ?? 100,
    async (id) => {
      running++;
      peak = Math.max(peak, running);
      started.push(id);
      await wait(20);
      running--;
    },
    () => undefined,
    (count) => dropped.push(count),
    options.busy,
    options.maxYieldMs ?? 200,
    2,
  );
  return { subject, started, dropped, peak: () => peak };
}

describe("BoundedStarter", () => {
  it("starts everything, each once, at most `concurrency` at a time, and drops what does not fit", async () => {
    const { subject, started, dropped, peak } = starter({ concurrency: 4, capacity: 30 });
    const ids = Array.from({ length: 32 }, (_, i) => `m${i}`);
    subject.enqueue(ids); // two more than fit: dropped, and said
    subject.enqueue(ids.slice(20, 30)); // asked again while waiting (the sweeper): not queued twice
    await wait(400);
    expect(started.sort()).toEqual(ids.slice(0, 30).sort());
    expect(peak()).toBe(4);
    expect(dropped).toEqual([2]);
  });

  it("starts nothing while the process is busy, until the oldest has waited; then only the overdue share", async () => {
    let busy = true;
    const { subject, started, peak } = starter({ busy: () => busy, maxYieldMs: 200 });
    subject.enqueue(Array.from({ length: 100 }, (_, i) => `m${i}`));
    await wait(120);
    expect(started).toEqual([]);
    await wait(250);
    // Overdue: at most two lanes (busyConcurrency) while busy, not all eight.
    expect(started.length).toBeGreaterThan(0);
    expect(started.length).toBeLessThan(50);
    expect(peak()).toBe(2);
    busy = false;
    await wait(600);
    expect(started).toHaveLength(100);
    expect(peak()).toBe(8);
  });
});

describe("FirstSteps", () => {
  it("holds a start until its first step is done here, or the timeout passes; without a worker, not at all", async () => {
    const idle = new FirstSteps(false);
    const steps = new FirstSteps(true);
    const timed = async (run: () => Promise<void>) => {
      const t0 = performance.now();
      await run();
      return performance.now() - t0;
    };
    // No worker in this process: nobody would say so, so nothing waits.
    expect(await timed(() => idle.around("a", 5000, async () => true))).toBeLessThan(50);

    // The first step may come before the start call returns (an eager task): it still counts.
    const early = timed(() =>
      steps.around("b", 5000, async () => {
        steps.done("b");
        return true;
      }),
    );
    expect(await early).toBeLessThan(50);

    // Two lanes on the same id (the sweeper asked again): both hear of its first step.
    const later = timed(() => steps.around("c", 5000, async () => true));
    const again = timed(() => steps.around("c", 5000, async () => true));
    await wait(150);
    steps.done("c");
    for (const held of await Promise.all([later, again])) {
      expect(held).toBeGreaterThanOrEqual(140);
      expect(held).toBeLessThan(1000);
    }

    // Not an eager start (already running or finished, or no free slot here): nothing to wait for.
    expect(await timed(() => steps.around("d", 5000, async () => false))).toBeLessThan(50);
    // Eager, but its first step never says so: the lane is free after the timeout.
    expect(await timed(() => steps.around("e", 200, async () => true))).toBeGreaterThanOrEqual(190);
  });
});
