// Runs the floor workflow COUNT times, INFLIGHT at a time, worker and client in this one process on
// one shared connection. Usage: run.ts ADDRESS COUNT INFLIGHT. Prints one JSON line of its figures.
import { fileURLToPath } from "node:url";
import { Client } from "@temporalio/client";
import { DefaultLogger, NativeConnection, Runtime, Worker } from "@temporalio/worker";

Runtime.install({ logger: new DefaultLogger("WARN") });

const [address, count, inflight] = process.argv.slice(2);
const total = Number(count);
const connection = await NativeConnection.connect({ address });
const client = new Client({ connection });
const taskQueue = `floor-${process.pid}`;
const worker = await Worker.create({
  connection,
  taskQueue,
  workflowsPath: fileURLToPath(new URL("./workflows.ts", import.meta.url)),
  activities: { step: async (n: number) => n },
});
const cpuBefore = process.cpuUsage();
const started = performance.now();
let next = 0;
await worker.runUntil(
  Promise.all(
    Array.from({ length: Number(inflight) }, async () => {
      while (next < total) {
        const i = next++;
        const handle = await client.workflow.start("leanMessage", {
          taskQueue,
          workflowId: `floor-${process.pid}-${i}`,
        });
        await handle.signal("report");
        await handle.result();
      }
    }),
  ),
);
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpuBefore);
process.stdout.write(
  `${JSON.stringify({ total, seconds, perSecond: total / seconds, nodeCpuMs: (cpu.user + cpu.system) / 1000 })}\n`,
);
await connection.close();
