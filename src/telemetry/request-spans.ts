// Request and stream spans: a CLIENT span from a request's start to its audit event, with trace context for upstreams.
import type { Context, Span, Tracer, UpDownCounter } from '@opentelemetry/api'
import type { AuditEvent } from '../audit.js'
import type { ObservedStart, RequestObservation, RequestObserver } from '../fetch/observer.js'
import { checkRequestHeaders, TRACE_CONTEXT_HEADERS, type HeaderList } from '../net/headers.js'
import type { OpenTelemetryApi } from './api.js'
import { errorType, requestSpanAttributes, requestSpanName } from './request-attributes.js'
import type { RequestMetrics } from './request-metrics.js'

/** What the request observer needs: the API, where spans and metrics go, and whether to propagate. */
export interface RequestTelemetry {
  readonly api: OpenTelemetryApi
  readonly tracer: Tracer
  readonly metrics: RequestMetrics
  readonly propagateTraceContext: boolean
}

/** True for an OpenTelemetry Context (what a call observation's `parent` is). */
export function isContext(value: unknown): value is Context {
  const candidate = value as Partial<Context> | null | undefined
  return typeof candidate?.getValue === 'function' && typeof candidate.setValue === 'function' && typeof candidate.deleteValue === 'function'
}

/** Writes propagator fields into a header list (names lower-case, as the host's headers are). */
const HEADER_SETTER = {
  set(carrier: HeaderList, key: string, value: string) {
    carrier.push([key.toLowerCase(), value])
  },
}

/** One request watched: its span, when it started, and whether its stream opened. Never throws. */
class RequestSpan implements RequestObservation {
  readonly #telemetry: RequestTelemetry
  readonly #span: Span
  readonly #parent: Context
  readonly #startedAt = performance.now()
  /** The instrument the open stream was counted on, once its head arrived. */
  #opened: UpDownCounter | undefined
  #ended = false

  constructor(telemetry: RequestTelemetry, start: ObservedStart) {
    const { api, tracer } = telemetry
    const parent = isContext(start.parent) ? start.parent : api.context.active()
    this.#telemetry = telemetry
    // The method is known only after validation: `HTTP` until the end (semconv's name for an unknown method).
    this.#span = tracer.startSpan('HTTP', {
      kind: api.SpanKind.CLIENT,
      attributes: { 'capsule_host.capsule.id': start.capsuleId, 'capsule_host.request.kind': start.kind, 'capsule_host.abi': start.abi },
    }, parent)
    this.#parent = parent
  }

  upstreamHeaders(): HeaderList | undefined {
    if (!this.#telemetry.propagateTraceContext) return undefined
    const headers: HeaderList = []
    try {
      const { api } = this.#telemetry
      api.propagation.inject(api.trace.setSpan(this.#parent, this.#span), headers, HEADER_SETTER)
      // Only W3C trace context, well formed: never the host's baggage (or another format's fields), never a header that could change the request.
      const kept = checkRequestHeaders(headers.filter(([name]) => TRACE_CONTEXT_HEADERS.has(name)))
      return kept.length > 0 ? kept : undefined
    } catch {
      // A propagator that throws (or writes a bad value) adds nothing; observing never changes a request.
      return undefined
    }
  }

  streamOpened(): void {
    if (this.#opened || this.#ended) return
    try {
      this.#opened = this.#telemetry.metrics.streamOpened()
    } catch {
      // As above.
    }
  }

  end(event: Readonly<AuditEvent>): void {
    if (this.#ended) return
    this.#ended = true
    try {
      this.#endSpan(event)
    } catch {
      // As above.
    }
    try {
      this.#telemetry.metrics.ended(event, (performance.now() - this.#startedAt) / 1000, this.#opened)
    } catch {
      // As above.
    }
  }

  #endSpan(event: Readonly<AuditEvent>): void {
    const span = this.#span
    // A span nothing records (no SDK, or sampled out) takes no attributes: none are made.
    if (!span.isRecording()) return span.end()
    span.updateName(requestSpanName(event))
    span.setAttributes(requestSpanAttributes(event))
    const error = errorType(event)
    if (error !== undefined) span.setStatus({ code: this.#telemetry.api.SpanStatusCode.ERROR, message: event.reason ?? error })
    span.end()
  }
}

/** The observation of a request whose span could not start. */
const UNOBSERVED: RequestObservation = { upstreamHeaders: () => undefined, streamOpened: () => undefined, end: () => undefined }

/** Starts a span per request; what the API or SDK throws is dropped (observing never changes a request). */
export function requestObserver(telemetry: RequestTelemetry): RequestObserver {
  return {
    start(start) {
      try {
        return new RequestSpan(telemetry, start)
      } catch {
        return UNOBSERVED
      }
    },
  }
}
