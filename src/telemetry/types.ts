// The telemetry's public shapes, typed by structure only so a project without @opentelemetry/api compiles against them.
import type { RequestObserver } from '../fetch/observer.js'

/**
 * A TracerProvider (an OpenTelemetry SDK's, or anything with its `getTracer`). Typed by shape so
 * that a project without @opentelemetry/api still compiles.
 */
export interface TracerProviderLike {
  getTracer(name: string, version?: string): unknown
}

/** A MeterProvider (an OpenTelemetry SDK's, or anything with its `getMeter`), typed by shape as above. */
export interface MeterProviderLike {
  getMeter(name: string, version?: string): unknown
}

/** `SafeFetchOptions.telemetry`. */
export interface TelemetryOptions {
  /**
   * Add W3C `traceparent`/`tracestate` of the request's span to what is sent upstream, through the
   * global propagator (register W3CTraceContextPropagator; NodeSDK does). Only those two: never the
   * host's baggage or another format's fields. Default false.
   */
  readonly propagateTraceContext?: boolean
  /** Where spans go instead of the global tracer provider (`trace.setGlobalTracerProvider`). */
  readonly tracerProvider?: TracerProviderLike
  /** Where metrics go instead of the global meter provider (`metrics.setGlobalMeterProvider`). */
  readonly meterProvider?: MeterProviderLike
}

/** A capsule call watched as a span; `parent` goes on the requests the call makes. */
export interface CallObservation {
  /** The OpenTelemetry Context holding the call's span (opaque to the runtime). */
  readonly parent: unknown
  /** Ends the span; with an error, its CapsuleError code is the span's `error.type`. Idempotent, never throws. */
  end(error?: unknown): void
}

/** The safe fetch's telemetry: request and stream spans (as a RequestObserver) and capsule call spans. */
export interface Telemetry extends RequestObserver {
  /** Starts the span of a capsule's export call; its `parent` goes on the call's requests (`RequestVia.parent`). */
  startCall(capsuleId: string, exportName: string): CallObservation
}

