// OpenTelemetry for capsule-host: spans and metrics for requests, streams and capsule calls, when @opentelemetry/api is installed.
import type { MeterProvider, Tracer } from '@opentelemetry/api'
import { openTelemetryApi } from './api.js'
import { startCallSpan } from './call-spans.js'
import { telemetryOptionsProblem } from './options.js'
import { RequestMetrics } from './request-metrics.js'
import { requestObserver } from './request-spans.js'
import { instrumentationScope } from './scope.js'
import type { Telemetry, TelemetryOptions } from './types.js'

export type { CallObservation, MeterProviderLike, Telemetry, TelemetryOptions, TracerProviderLike } from './types.js'

export { telemetryOptionsProblem } from './options.js'

/**
 * The telemetry for these options, or undefined: `false`, or no @opentelemetry/api installed (then
 * nothing is loaded and nothing costs). With the API and no SDK registered, every span is a no-op.
 * Throws a TypeError for an unknown option or a wrong shape, installed or not.
 */
export function createTelemetry(options: TelemetryOptions | false | undefined): Telemetry | undefined {
  const problem = telemetryOptionsProblem(options)
  if (problem !== undefined) throw new TypeError(`createSafeFetch: ${problem}`)
  if (options === false) return undefined
  const api = openTelemetryApi()
  if (!api) return undefined
  const scope = instrumentationScope()
  const tracer = (options?.tracerProvider ?? api.trace.getTracerProvider()).getTracer(scope.name, scope.version) as Tracer
  const meterProvider = options?.meterProvider as MeterProvider | undefined
  const metrics = new RequestMetrics(meterProvider ? () => meterProvider : () => api.metrics.getMeterProvider(), scope)
  const observer = requestObserver({ api, tracer, metrics, propagateTraceContext: options?.propagateTraceContext === true })
  return {
    start: (start) => observer.start(start),
    startCall: (capsuleId, exportName) => startCallSpan(api, tracer, capsuleId, exportName),
  }
}
