/**
 * Every number that a benchmark chose, in one place, each with the measurement that chose it.
 * Re-tune one by running its benchmark (`npm run bench:send`, see bench/RESULTS.md) and changing it
 * here, with the new figures; never at the place it is used. Numbers an operator sets (the backlog
 * limits, the send rate per gateway) live in `config.ts` instead, and what follows from them is
 * derived there.
 */
export const tuning = {
  /**
   * How long the workflow starter makes way for a burst of sends before it starts workflows anyway.
   * Taking a burst alone ends it sooner and leaves the drain no later: BENCH_ONLY=burst, alternating,
   * 750 ms gave 600 and 553 sends/s (1.49 and 1.58 ms server CPU per send, drained in 33.1 and
   * 35.2 s); 3,000 ms gave 806 and 772 sends/s (0.99 and 1.07 ms, 32.1 and 34.5 s). Earlier values
   * 1, 4, 2 and 0.75 s (commits 3afaeaf to 615fdf7). The backlog limit still stops starvation.
   */
  starterMakeWayMs: {
    value: 3000,
    measured: "615fdf7: 806/772 vs 600/553 sends/s accepted at 3000 vs 750 ms; drain 32.1/34.5 vs 33.1/35.2 s",
  },
  /**
   * Clients count as sending hard while this many requests were in flight at some moment of the
   * last `clientsBusyHoldMs`: one insert answers a wave of sends at once, and polling every 5 ms the
   * starter took each dip between waves for quiet (da3ef9f).
   */
  clientsBusyThreshold: {
    value: 4,
    measured: "da3ef9f: chosen by reasoning (one insert answers a wave); no sweep recorded",
  },
  clientsBusyHoldMs: {
    value: 250,
    measured: "da3ef9f: chosen by reasoning (longer than a dip between waves); no sweep recorded",
  },
  /**
   * The local Temporal dev server's soft memory limit (Go's GOMEMLIMIT). Its binary maps 70 to
   * 120 MiB of file pages on top of the heap; at 128 MiB the burst peaks at 199-201 MiB, against
   * 214 at 144 and 258 at 144 on a freshly built binary, for 0.5-0.9 ms more engine CPU per message.
   */
  devServerMemoryLimit: {
    value: "128MiB",
    measured: "15bcb59: peak RSS 200 MiB (72 MiB file pages) at 128MiB vs 258 MiB at 144MiB on a fresh build",
  },
  /**
   * Executions the dev server keeps in memory (its default is 512): a message workflow lives well
   * under a second when its phone is online; the size did not move the peak RSS (256, 128, 64).
   */
  devServerHistoryCacheSize: { value: 256, measured: "0382aa7; 15bcb59: 256/128/64 gave the same peak" },
  /**
   * The V8 heap cap of `npm start` (main isolate and the workflow thread), in MiB: live data is
   * about 60 MiB under a 2,000-message burst; a cap makes V8 collect before the heap grows.
   */
  nodeHeapMb: {
    value: 160,
    measured: "8977adf; RESULTS.md sixth session: 128 gave 229/233 MiB peak against 232 at 160",
  },
  /**
   * The defaults below were set when their mechanism was written, without a sweep of their own; the
   * full bench met its targets with them. They are here so that the next sweep changes them in one place.
   */
  /** Message workflows started and not yet seen taking their first step. */
  workflowStartConcurrency: {
    value: 8,
    measured: "3afaeaf: no sweep recorded; the bench's drain meets 0.85x the floor at 8",
  },
  /** Workflows the worker keeps in memory between their tasks. */
  workflowCacheSize: { value: 250, measured: "cbfd5aa: no sweep recorded; bounded so that memory stays flat" },
  /**
   * Sends stored by one insert at most, and inserts in flight at once: a burst of 32 clients is
   * stored in waves of one statement each (0906370).
   */
  insertBatchSize: { value: 200, measured: "0906370: no sweep recorded; a 32-client burst never fills it" },
  insertBatchesInFlight: { value: 2, measured: "0906370: no sweep recorded" },
  /**
   * Gateways the picker weighs for a message before it looks at the whole fleet (which it does only
   * when none of them can take it): the window is read through an index, so a pick costs the same
   * with 10 phones or 10,000, and the next pick's window starts after this one's.
   */
  pickWindow: {
    value: 32,
    measured: "issue 25: bench/pick.ts, 10,000 online gateways: see bench/RESULTS.md (eleventh session)",
  },
  /**
   * Heartbeats, and touches (a phone connected, or its connection refreshed), recorded in one
   * statement each, and such statements running at once: 10,000 phones beat 333 times a second.
   */
  livenessBatchSize: {
    value: 500,
    measured: "issue 25: no sweep recorded; bench:devices in bench/RESULTS.md (eleventh session)",
  },
  livenessBatchesInFlight: { value: 2, measured: "issue 25: no sweep recorded" },
  /** Acknowledgements recorded in one statement (a phone taking a burst sends them back to back). */
  ackBatchSize: { value: 500, measured: "issue 25: no sweep recorded; bench/RESULTS.md tenth session" },
  /** Acknowledgement statements running at once; further acknowledgements wait for one and go in the next. */
  ackBatchesInFlight: { value: 2, measured: "issue 25: no sweep recorded; bench/RESULTS.md tenth session" },
  /**
   * The V8 heap one connected device takes, in KiB, the largest of the kinds (the gRPC stream's): `npm start` adds this much per device the instance may hold
   * (DEVICE_MAX_CONNECTIONS) to `nodeHeapMb` (see heapMbFor).
   */
  heapPerDeviceKiB: {
    value: 28,
    measured:
      "bench:devices (RESULTS.md, eleventh session): 10,000 gRPC stream phones 14.5 KiB, 10,000 /cable 10.4 KiB, 1,000 SMSGate app phones (events stream) 26.2 KiB; 137.2 KiB for the stream before its own door",
  },
  /** Plans of just-stored messages kept for their first dispatch (read back from the database past this). */
  freshPlans: { value: 4096, measured: "aca9455: no sweep recorded; more than a 2,000-message burst" },
} satisfies Record<string, { readonly value: number | string; readonly measured: string }>;

/**
 * The V8 heap cap `npm start` gives a server that may hold `devices` connected devices, in MiB: the
 * cap a server with few devices needs, and room for each device's connection. Past the cap V8 stops
 * the process (out of memory), so devices beyond `devices` are refused (DEVICE_MAX_CONNECTIONS).
 */
export function heapMbFor(devices: number): number {
  return tuning.nodeHeapMb.value + Math.ceil((devices * tuning.heapPerDeviceKiB.value) / 1024);
}
