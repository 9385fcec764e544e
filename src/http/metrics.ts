import type { FastifyInstance } from "fastify";
import { Counter, Histogram } from "prom-client";
import type { Metrics } from "../shared/metrics.js";

/** The Temporal SDK's own metrics (worker task slots, latencies, polls), as Prometheus text; "" if absent. */
async function temporalMetrics(address: string | undefined): Promise<string> {
  if (address === undefined) return "";
  try {
    const response = await fetch(`http://${address}/metrics`, { signal: AbortSignal.timeout(1000) });
    return response.ok ? await response.text() : "";
  } catch {
    return "";
  }
}

/** The series kept under `key`, made by `make` the first time. */
function seriesOf<S>(series: Map<string, S>, key: string, make: () => S): S {
  let found = series.get(key);
  if (found === undefined) {
    found = make();
    series.set(key, found);
  }
  return found;
}

/**
 * `/metrics` for Prometheus: the process's domain and runtime metrics, a count and latency per route
 * and status, and the Temporal worker's own metrics (served by the SDK on a loopback port).
 */
export function registerMetrics(
  app: FastifyInstance,
  metrics: Metrics,
  temporalAddress: () => string | undefined,
): void {
  const { registry } = metrics;
  const requests = new Counter({
    name: "smsgw_http_requests_total",
    help: "HTTP requests answered, by method, route and status.",
    labelNames: ["method", "route", "status"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "smsgw_http_request_duration_seconds",
    help: "Time to answer an HTTP request, by method and route.",
    labelNames: ["method", "route"] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });

  // Each label set's series, found once: prom-client would otherwise hash the labels on every request.
  const counted = new Map<string, Counter.Internal>();
  const timed = new Map<string, Histogram.Internal<"method" | "route">>();
  app.addHook("onResponse", async (request, reply) => {
    // The route pattern, not the URL, keeps label cardinality bounded; Connect routes are per RPC.
    const route = request.routeOptions.url ?? "unmatched";
    const { method } = request;
    const status = String(reply.statusCode);
    seriesOf(counted, `${method} ${route} ${status}`, () => requests.labels({ method, route, status })).inc();
    seriesOf(timed, `${method} ${route}`, () => duration.labels({ method, route })).observe(reply.elapsedTime / 1000);
  });

  app.get("/metrics", async (_request, reply) => {
    const [own, temporal] = await Promise.all([registry.metrics(), temporalMetrics(temporalAddress())]);
    reply.header("content-type", registry.contentType);
    return temporal === "" ? own : `${own}\n${temporal}`;
  });
}
