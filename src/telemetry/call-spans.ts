// Capsule call spans: an INTERNAL span per export call, whose context is the parent of the requests the call makes.
import type { Tracer } from '@opentelemetry/api'
import { CapsuleError } from '../errors.js'
import type { OpenTelemetryApi } from './api.js'
import type { CallObservation } from './types.js'

/** The call's `error.type`: the CapsuleError code, or `_OTHER` for anything else thrown (semconv's fallback). */
export function callErrorType(error: unknown): string {
  return error instanceof CapsuleError ? error.code : '_OTHER'
}

/** A call observation that observes nothing (the span could not start). */
const UNOBSERVED: CallObservation = { parent: undefined, end: () => undefined }

/** Starts `capsule.call {export}` as a child of the active context. Never throws. */
export function startCallSpan(api: OpenTelemetryApi, tracer: Tracer, capsuleId: string, exportName: string): CallObservation {
  try {
    const active = api.context.active()
    const span = tracer.startSpan(`capsule.call ${exportName}`, {
      kind: api.SpanKind.INTERNAL,
      attributes: { 'capsule_host.capsule.id': capsuleId, 'capsule_host.export': exportName },
    }, active)
    let ended = false
    return {
      parent: api.trace.setSpan(active, span),
      end(error?: unknown) {
        if (ended) return
        ended = true
        try {
          if (error !== undefined) {
            const type = callErrorType(error)
            span.setAttribute('error.type', type)
            span.setStatus({ code: api.SpanStatusCode.ERROR, message: type })
          }
          span.end()
        } catch {
          // Observing never changes a call.
        }
      },
    }
  } catch {
    return UNOBSERVED
  }
}
