import { type Context, context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { Resource } from "@opentelemetry/resources";
import type { SpanProcessor } from "@opentelemetry/sdk-trace-base";

/** Tracing, when OTEL_EXPORTER_OTLP_ENDPOINT is set: the span processor and resource workers export with. */
export interface Tracing {
  readonly resource: Resource;
  readonly processor: SpanProcessor;
  /** Exports what is left and stops. */
  shutdown(): Promise<void>;
}

let started: Tracing | undefined;

/**
 * Starts OpenTelemetry tracing for the process when the configuration has an OTLP endpoint
 * (`OTEL_EXPORTER_OTLP_ENDPOINT`: spans go there over OTLP/HTTP), else does nothing: the SDK is not even
 * loaded, the API's tracer is a no-op, and no interceptor is installed anywhere.
 */
export async function startTracing(
  settings: { readonly endpoint: string; readonly serviceName: string } | undefined,
): Promise<Tracing | undefined> {
  if (settings === undefined) return undefined;
  if (started !== undefined) return started;
  const [{ OTLPTraceExporter }, { Resource }, { BatchSpanProcessor }, { NodeTracerProvider }] = await Promise.all([
    import("@opentelemetry/exporter-trace-otlp-http"),
    import("@opentelemetry/resources"),
    import("@opentelemetry/sdk-trace-base"),
    import("@opentelemetry/sdk-trace-node"),
  ]);
  const resource = new Resource({ "service.name": settings.serviceName });
  // OTLP/HTTP's signal path under the configured endpoint, as the SDK derives it from the variable.
  const exporter = new OTLPTraceExporter({ url: `${settings.endpoint}/v1/traces` });
  const processor = new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1000 });
  const provider = new NodeTracerProvider({ resource });
  provider.addSpanProcessor(processor);
  // Context kept across awaits (AsyncLocalStorage) and W3C trace context in Temporal's headers.
  provider.register();
  const tracing: Tracing = {
    resource,
    processor,
    shutdown: async () => {
      await provider.shutdown();
      started = undefined;
    },
  };
  started = tracing;
  return tracing;
}

/** Temporal's OpenTelemetry interceptors, loaded only when tracing is on. */
export function temporalTracing() {
  return import("@temporalio/interceptors-opentelemetry");
}

/** The tracer of smsgw's own spans (a no-op unless tracing started). */
export const tracer = () => trace.getTracer("smsgw");

/**
 * Runs `work` in a span of its own, ending it (with the error, if any) when `work` settles; just runs
 * it when tracing is off.
 */
export function inSpan<T>(
  name: string,
  kind: SpanKind,
  attributes: Record<string, string>,
  work: () => Promise<T>,
): Promise<T> {
  if (started === undefined) return work();
  return tracer().startActiveSpan(name, { kind, attributes }, async (span) => {
    try {
      return await work();
    } catch (error) {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** The current trace context as a W3C `traceparent`, to keep with a record; undefined outside a trace. */
export function currentTraceparent(): string | undefined {
  if (started === undefined || trace.getSpan(context.active()) === undefined) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent;
}

/** The context a kept `traceparent` names (the root context without one). */
export function contextOf(traceparent: string | null | undefined): Context {
  return traceparent ? propagation.extract(ROOT_CONTEXT, { traceparent }) : ROOT_CONTEXT;
}

export { context, SpanKind };
