// One request's trace: each fact is written by the step that decides it, and the trace is the audit event.
import type { Abi, AuditEvent } from '../audit.js'
import { isCapsuleHostError, wireErrorOf } from '../errors.js'
import type { Allowed, Decider, DenyReason } from '../gate/types.js'
import { safeText } from '../safe-text.js'
import type { AdmitOutcome } from './admit.js'
import type { RequestSecrets } from './secrets.js'

/** Called with what a host-side bug threw (a middleware's, a gate's, ours): the host's own hook. */
export type ErrorHook = (error: unknown, event: AuditEvent) => void

/** The most characters of a host-side error's message and stack kept on an event. */
const MAX_ERROR_CHARS = 8192

export class RequestTrace {
  readonly #started = performance.now()
  #event: AuditEvent
  /** What was thrown, for an `internal` failure: handed to the host's onError hook with the event. */
  #thrown: unknown

  constructor(capsuleId: string, requestId: string, kind: AuditEvent['kind'], abi: Abi = 'capsule-host') {
    this.#event = {
      capsuleId,
      requestId,
      kind,
      abi,
      method: undefined,
      url: undefined,
      // Nothing has allowed it yet: until admission says otherwise, validation is what stands.
      allowed: false,
      decidedBy: 'validation',
      redactions: 0,
      bytesIn: 0,
      bytesOut: 0,
      redirects: 0,
      durationMs: 0,
    }
  }

  /** Validation passed: what the capsule asked for (its own URL, query hidden). */
  prepared(method: string, url: string, bytesOut: number): void {
    // Valid: until an admission decides, the request is pending (a cancel or timeout now ends it so).
    Object.assign(this.#event, { method, url, bytesOut, decidedBy: 'pending' })
  }

  /** An admission allowed a hop: the first allow names the decider, a later one (a redirect) keeps it. */
  allowedBy(decision: Allowed, hop: number): void {
    if (hop > 0) return
    this.#event.allowed = true
    this.#event.decidedBy = decision.decidedBy
    if (decision.route) this.#event.route = decision.route
  }

  /** A stage refused the request (at any hop, after an allow included). */
  refusedBy(decidedBy: Decider, reason: DenyReason, detail: string): void {
    Object.assign(this.#event, { allowed: false, decidedBy, reason, detail })
    delete this.#event.route
  }

  /** Writes an admission's decision, where it was decided. A middleware rewrite's allow is not the request's. */
  admission(outcome: AdmitOutcome, hop: number, rewrite: boolean): void {
    const { decision } = outcome
    if (decision === undefined) {
      // A gate's or the policy's `resolve()` failed, so no decision was reached (a cancel, or the
      // request's total deadline passing, leaves it pending).
      const stopped = outcome.error?.code === 'cancelled' || (outcome.error?.code === 'timeout' && outcome.error.phase === 'total')
      Object.assign(this.#event, { allowed: false, decidedBy: stopped ? 'pending' : 'resolver' })
    } else if (!decision.allowed) {
      this.refusedBy(decision.decidedBy, decision.reason, decision.detail)
      if (decision.thrown !== undefined) this.#keepThrown(decision.thrown)
    } else if (!rewrite) this.allowedBy(decision, hop)
  }

  dialled(addressClass: string): void {
    this.#event.addressClass = addressClass
  }

  /** Body bytes received so far (a buffered body once read, a stream's as it ends). */
  received(bytes: number): void {
    this.#event.bytesIn = bytes
  }

  /** The body bytes recorded so far. */
  get bytesIn(): number {
    return this.#event.bytesIn
  }

  followed(redirects: number): void {
    this.#event.redirects = redirects
  }

  /** The request failed: its code and phase, and the host-side detail. A host bug also keeps what was thrown. */
  failed(error: unknown): void {
    const wire = wireErrorOf(error)
    this.#event.code = wire.code
    if (wire.phase) this.#event.phase = wire.phase
    if (wire.retryAfterMs !== undefined) this.#event.retryAfterMs = wire.retryAfterMs
    const own = isCapsuleHostError(error) ? error : undefined
    if (own?.addressClass) this.#event.addressClass = own.addressClass
    this.#event.detail ??= own?.detail ?? (wire.code === 'internal' ? undefined : wire.message)
    if (wire.code === 'internal') this.#keepThrown(own?.cause ?? error)
  }

  /** What a host-side bug threw: on the event (name, message, stack) and for the host's onError hook. */
  #keepThrown(thrown: unknown): void {
    this.#thrown = thrown
    const { name, message, stack } = thrown instanceof Error ? thrown : { name: typeof thrown, message: String(thrown), stack: undefined }
    this.#event.error = { name, message: safeText(message, MAX_ERROR_CHARS), ...(stack ? { stack: safeText(stack, MAX_ERROR_CHARS) } : {}) }
  }

  /**
   * The final event, with every text field scrubbed of the request's secrets. From now on the
   * trace takes no more facts, so a step still running in the background (an admission the
   * request stopped waiting for) cannot change the recorded event.
   */
  finish(status: number | undefined, secrets: RequestSecrets | undefined, onError?: ErrorHook): Readonly<AuditEvent> {
    const event = this.#event
    // Later writes go to a scratch copy, never to the event handed out.
    this.#event = { ...event }
    if (status !== undefined && event.code === undefined) event.status = status
    event.durationMs = Math.round(performance.now() - this.#started)
    // Counted before the event itself is scrubbed: only what the capsule received counts.
    event.redactions = secrets?.replacements ?? 0
    if (secrets && secrets.size > 0) {
      if (event.detail) event.detail = secrets.scrubText(event.detail)
      if (event.error) {
        event.error = {
          name: event.error.name,
          message: secrets.scrubText(event.error.message),
          ...(event.error.stack ? { stack: secrets.scrubText(event.error.stack) } : {}),
        }
      }
    }
    if (this.#thrown !== undefined && onError) {
      try {
        onError(this.#thrown, event)
      } catch {
        // The host's hook must never change what the capsule gets.
      }
    }
    return event
  }
}
