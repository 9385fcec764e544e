// The engine's latency floor for bench:send: how long after a client starts a workflow (eagerly, with
// its worker in the same process on the same connection, as smsgw does) its first local activity
// runs, on an otherwise idle dev server. One start at a time, RUNS times, 200 ms apart.
// Usage: latency.ts ADDRESS RUNS. Prints one JSON line: p50 and p99 of the start call and of start to
// first local activity (ms).
import { fileURLToPath } from "node:url";
import { Client } from "@temporalio/client";
import { DefaultLogger, NativeConnection, Runtime, Worker } from "@temporalio/worker";
import { percentile } from "../harness.js";

Runtime.install({ logger: new DefaultLogger("WARN") });

const [address, runs] = process.argv.slice(2);
const connection = await NativeConnection.connect({ address });
const client = new Client({ connection });
const taskQueue = `latency-${process.pid}`;
let firstStepAt = 0;
const worker = await Worker.create({
  connection,
  taskQueue,
  workflowThreadPoolSize: 1,
  workflowsPath: fileURLToPath(new URL("./workflows.ts", import.meta.url)),
  activities: {
    step: async (n: number) => {
      if (n === 1) firstStepAt = performance.now();
      return n;
    },
  },
});
const startCall: number[] = [];
const toActivity: number[] = [];
await worker.runUntil(
  (async () => {
    // The first few warm the worker up and are not counted.
    for (let i = -5; i < Number(runs); i++) {
      const t0 = performance.now();
      const handle = await client.workflow.start("leanMessage", {
        taskQueue,
        workflowId: `latency-${process.pid}-${i}`,
        requestEagerStart: true,
      });
      const started = performance.now();
      while (firstStepAt < t0) await new Promise((resolve) => setImmediate(resolve));
      if (i >= 0) {
        startCall.push(started - t0);
        toActivity.push(firstStepAt - t0);
      }
      await handle.signal("report");
      await handle.result();
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  })(),
);
const sorted = (values: number[]) => [...values].sort((a, b) => a - b);
process.stdout.write(
  `${JSON.stringify({
    startP50: percentile(sorted(startCall), 50),
    startP99: percentile(sorted(startCall), 99),
    activityP50: percentile(sorted(toActivity), 50),
    activityP99: percentile(sorted(toActivity), 99),
  })}\n`,
);
await connection.close();
