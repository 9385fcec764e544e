import type { Reporter, TestModule } from "vitest/node";

/** Prints the plain `N passed, M failed` line CI reads, after vitest's own summary. */
export class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") passed++;
        else if (state === "failed") failed++;
        else skipped++;
      }
      // A file that failed to load, or whose hook failed (its tests then count as skipped), has no
      // failed test to count but must still fail the run.
      const tests = [...module.children.allTests()];
      if (module.state() === "failed" && !tests.some((test) => test.result().state === "failed")) failed++;
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}\n`);
  }
}

export default SummaryReporter;
