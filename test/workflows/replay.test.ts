import { readdirSync, readFileSync } from "node:fs";
import { Worker } from "@temporalio/worker";
import { describe, expect, inject, it } from "vitest";

/**
 * Recorded histories of every message workflow shape that may still be running somewhere (the
 * earlier `messageWorkflow` and today's `messageLifecycle`), replayed against today's workflow code:
 * a change that would break a running workflow fails here. Change a workflow's shape behind
 * `patched()` (or as a new workflow type), and record new histories with RECORD_HISTORIES=1.
 */
const folder = "test/fixtures/histories";

describe("recorded workflow histories replay against today's code", () => {
  const files = readdirSync(folder).filter((file) => file.endsWith(".json"));

  it("has histories of both message workflow types", () => {
    expect(files.some((file) => file.startsWith("message-v1-"))).toBe(true);
    expect(files.some((file) => file.startsWith("message-lifecycle-"))).toBe(true);
  });

  it.each(files)("replays %s without nondeterminism", async (file) => {
    const history = JSON.parse(readFileSync(`${folder}/${file}`, "utf8"));
    await Worker.runReplayHistory({ workflowBundle: { code: inject("workflowBundleCode") } }, history, file);
  });
});
