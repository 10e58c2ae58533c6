// The hook a telemetry exporter uses to watch each request and stream from start to audit event.
import type { Abi, AuditEvent } from '../audit.js'
import type { HeaderList } from '../net/headers.js'

/** What is known of a request when it starts (before validation). */
export interface ObservedStart {
  readonly capsuleId: string
  readonly requestId: string
  readonly kind: AuditEvent['kind']
  readonly abi: Abi
  /** The parent the runtime passed (a capsule call's telemetry context), if any. */
  readonly parent: unknown
}

/** One request watched from its start to its end; every method is called at most once, never throws. */
export interface RequestObservation {
  /**
   * Headers the host adds to what is sent upstream (W3C `traceparent`, `tracestate`), called once
   * after validation; `undefined` for none. Middleware sees them; every hop carries them.
   */
  upstreamHeaders(): HeaderList | undefined
  /** A stream's head arrived: it is open until `end`. */
  streamOpened(): void
  /** The request or stream ended with this audit event. */
  end(event: Readonly<AuditEvent>): void
}

/** Watches a safe fetch's requests (the OpenTelemetry exporter is one). */
export interface RequestObserver {
  start(request: ObservedStart): RequestObservation
}
