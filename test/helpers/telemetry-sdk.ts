// The OpenTelemetry SDK for telemetry tests: in-memory span and metric exporters registered as the globals, and what they hold.
import { context, metrics, propagation, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { AggregationTemporality, MeterProvider, MetricReader, type DataPoint, type MetricData } from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'

/** A metric reader that exports only when asked (`collect()`): no timer, nothing periodic. */
export class ManualReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

export interface TestSdk {
  /** Ended spans, oldest first. */
  spans(): ReadableSpan[]
  /** The metric named `name` as collected now (cumulative), or undefined when nothing recorded it. */
  metric(name: string): Promise<MetricData | undefined>
  /** Forgets the spans ended so far. */
  resetSpans(): void
  /**
   * Starts the metrics from zero: a new global meter provider (the telemetry makes its
   * instruments again on the new one, as it does for a host that registers its SDK late).
   */
  resetMetrics(): Promise<void>
  /** Unregisters the globals and shuts the providers down. */
  shutdown(): Promise<void>
}

/** A meter provider read only when asked, registered as the global one. */
function registerMeterProvider(): { provider: MeterProvider; reader: ManualReader } {
  const reader = new ManualReader({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE })
  const provider = new MeterProvider({ readers: [reader] })
  metrics.setGlobalMeterProvider(provider)
  return { provider, reader }
}

/** Registers a tracer provider, a meter provider, the W3C propagator and an AsyncLocalStorage context manager as the globals. */
export function registerTestSdk(): TestSdk {
  const exporter = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  let meters = registerMeterProvider()
  const contextManager = new AsyncLocalStorageContextManager().enable()
  trace.setGlobalTracerProvider(tracerProvider)
  propagation.setGlobalPropagator(new W3CTraceContextPropagator())
  context.setGlobalContextManager(contextManager)
  return {
    spans: () => exporter.getFinishedSpans(),
    resetSpans: () => exporter.reset(),
    async resetMetrics() {
      const old = meters
      metrics.disable()
      meters = registerMeterProvider()
      await old.provider.shutdown()
    },
    async metric(name) {
      const { resourceMetrics } = await meters.reader.collect()
      return resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics).find((metric) => metric.descriptor.name === name)
    },
    async shutdown() {
      trace.disable()
      metrics.disable()
      propagation.disable()
      context.disable()
      await Promise.all([tracerProvider.shutdown(), meters.provider.shutdown()])
    },
  }
}

/** One data point: its attributes, and its value (a sum's value, a histogram's count). */
export interface Point {
  attributes: Record<string, unknown>
  value: number
}

/** The data points of a collected metric (none when it was never recorded). */
export function pointsOf(metric: MetricData | undefined): Point[] {
  return ((metric?.dataPoints ?? []) as Array<DataPoint<unknown>>).map((point) => ({
    attributes: { ...point.attributes },
    value: typeof point.value === 'number' ? point.value : (point.value as { count: number }).count,
  }))
}
