import { describe, expect, it } from "vitest";
import { Batcher } from "../src/shared/batcher.js";

/** A batch runner that records the batches it was given and answers once `release` is called. */
function recorder(answer: (item: number) => number = (item) => item * 10) {
  const batches: number[][] = [];
  const gates: (() => void)[] = [];
  const run = async (items: number[]) => {
    batches.push(items);
    await new Promise<void>((resolve) => gates.push(resolve));
    return items.map(answer);
  };
  const release = () => {
    for (const gate of gates.splice(0)) gate();
  };
  return { batches, run, release };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe("Batcher", () => {
  it("runs the items given in one turn of the event loop as one batch, answering each", async () => {
    const { batches, run, release } = recorder();
    const batcher = new Batcher(run, { maxBatch: 100, concurrency: 2 });
    const answers = Promise.all([1, 2, 3].map((item) => batcher.add(item)));
    await turn();
    release();
    expect(await answers).toEqual([10, 20, 30]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it("runs a lone item at once, without waiting for company", async () => {
    const { batches, run, release } = recorder();
    const batcher = new Batcher(run, { maxBatch: 100, concurrency: 1 });
    const answer = batcher.add(7);
    await turn();
    expect(batches).toEqual([[7]]);
    release();
    expect(await answer).toBe(70);
  });

  it("holds further items while `concurrency` batches run, then runs them together", async () => {
    const { batches, run, release } = recorder();
    const batcher = new Batcher(run, { maxBatch: 100, concurrency: 1 });
    const first = batcher.add(1);
    await turn();
    const later = [batcher.add(2), batcher.add(3)];
    await turn();
    const more = batcher.add(4);
    await turn();
    expect(batches).toEqual([[1]]);
    expect(batcher.load).toEqual({ waiting: 3, running: 1 });
    release();
    await first;
    await turn();
    await turn();
    expect(batches).toEqual([[1], [2, 3, 4]]);
    release();
    expect(await Promise.all([...later, more])).toEqual([20, 30, 40]);
    expect(batcher.load).toEqual({ waiting: 0, running: 0 });
  });

  it("splits what waits into batches of at most maxBatch", async () => {
    const { batches, run, release } = recorder();
    const batcher = new Batcher(run, { maxBatch: 2, concurrency: 3 });
    const answers = Promise.all([1, 2, 3, 4, 5].map((item) => batcher.add(item)));
    await turn();
    release();
    await answers;
    expect(batches).toEqual([[1, 2], [3, 4], [5]]);
  });

  it("runs a failed batch again item by item, so that only the bad item fails", async () => {
    const batches: number[][] = [];
    const batcher = new Batcher(
      async (items: number[]) => {
        batches.push(items);
        if (items.includes(2)) throw new Error("2 is bad");
        return items.map((item) => item * 10);
      },
      { maxBatch: 100, concurrency: 1 },
    );
    const answers = await Promise.allSettled([1, 2, 3].map((item) => batcher.add(item)));
    expect(answers).toEqual([
      { status: "fulfilled", value: 10 },
      { status: "rejected", reason: new Error("2 is bad") },
      { status: "fulfilled", value: 30 },
    ]);
    expect(batches).toEqual([[1, 2, 3], [1], [2], [3]]);
  });

  it("fails every item of a failed batch with its error, without running them again, when told not to", async () => {
    const batches: number[][] = [];
    const batcher = new Batcher(
      async (items: number[]) => {
        batches.push(items);
        throw new Error("no answer");
      },
      { maxBatch: 100, concurrency: 1, retryAlone: false },
    );
    const answers = await Promise.allSettled([1, 2, 3].map((item) => batcher.add(item)));
    expect(answers.map((answer) => answer.status)).toEqual(["rejected", "rejected", "rejected"]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it("fails the items of a batch whose runner answers for the wrong number of items", async () => {
    const batcher = new Batcher(async (items: number[]) => items.slice(1), { maxBatch: 100, concurrency: 1 });
    await expect(batcher.add(1)).rejects.toThrow("a batch of 1 got 0 results");
  });
});
