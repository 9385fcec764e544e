import { type Context, context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { Resource } from "@opentelemetry/resources";
import { BatchSpanProcessor, type SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";

/** Tracing, when OTEL_EXPORTER_OTLP_ENDPOINT is set: the span processor and resource workers export with. */
export interface Tracing {
  readonly resource: Resource;
  readonly processor: SpanProcessor;
  /** Exports what is left and stops. */
  shutdown(): Promise<void>;
}

let started: Tracing | undefined;

/**
 * Starts OpenTelemetry tracing for the process when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (spans go
 * there over OTLP/HTTP; the standard OTEL_* variables apply), else does nothing: the API's tracer is
 * then a no-op, and no interceptor is installed anywhere.
 */
export function startTracing(env: NodeJS.ProcessEnv = process.env): Tracing | undefined {
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT === undefined || env.OTEL_EXPORTER_OTLP_ENDPOINT === "") return undefined;
  if (started !== undefined) return started;
  const resource = new Resource({ "service.name": env.OTEL_SERVICE_NAME || "smsgw" });
  const processor = new BatchSpanProcessor(new OTLPTraceExporter(), { scheduledDelayMillis: 1000 });
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
