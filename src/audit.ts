// The audit log: one structured event per request or stream, to listeners, async iterators and JSON lines.
import type { ErrorCode, TimeoutPhase } from './errors.js'
import type { Decider, DenyReason } from './gate/types.js'

/**
 * Which host ABI a capsule made a request through: capsule-host's own functions
 * (`extism:host/user` http_request / http_stream_*) or Extism's kernel HTTP (`extism:host/env`
 * http_request, as every PDK's HTTP helper calls it).
 */
export const ABIS = ['capsule-host', 'extism'] as const
export type Abi = (typeof ABIS)[number]

/** One request's outcome. Never contains a query string, a header value, a body or a secret. */
export interface AuditEvent {
  /** The capsule that made the request (its load `id`), or the `capsuleId` host code passed. */
  capsuleId: string
  /** Unique within this safe fetch: `<capsuleId>#<n>`. */
  requestId: string
  /** `request`: a buffered request (`http_request`); `stream`: a streamed one (`http_stream_start`). */
  kind: 'request' | 'stream'
  /**
   * The ABI the request came through, set by the host function that served it (never from
   * anything the capsule wrote). Host code calling the safe fetch directly gets `capsule-host`.
   */
  abi: Abi
  /** The method the capsule asked for; undefined when the request failed validation. */
  method: string | undefined
  /**
   * The capsule's own URL (never one middleware set): origin and path, with any query string
   * replaced by `?…`. Undefined when the URL was invalid.
   */
  url: string | undefined
  /**
   * True when every admission the request met allowed it: the gates (manifest, rules or policy,
   * host gates) and the address policy, on every hop. False when validation, the stream table, a
   * quota, a gate, the address policy or middleware refused it. A request that failed after it was
   * allowed (a timeout, a reset, a middleware bug) is `allowed: true` with a `code`.
   */
  allowed: boolean
  /**
   * Who decided: a stage (`validation`, `stream-table`, `manifest`, `rules`, `policy`, `gates`,
   * `default`, `address-policy`, `resolver`, `request-options`, `middleware`, `quota-store`),
   * `rule:<id>`, `gate:<name>` or `quota:<id>`. Set on every event; a failure after an allow keeps
   * the decider that allowed.
   */
  decidedBy: Decider
  /** The route pattern of the rule that allowed, when the rule has routes. */
  route?: string
  /** For refusals: a stable phrase from DENY_REASONS (docs/rules.md). */
  reason?: DenyReason
  /**
   * Host-side detail: what was refused and why (the path, the method, a resolved private
   * address), or what failed (a TLS cause, a socket error). Secrets are redacted from it.
   */
  detail?: string
  /** The class of the address dialled, or of the blocked address that refused the request. */
  addressClass?: string
  /** The HTTP status the capsule received (upstream's or a middleware's); absent with a `code`. */
  status?: number
  /** The wire error code the capsule received (docs/errors.md); absent when it got a response. */
  code?: ErrorCode
  /** For `timeout`: which wait ran out (`host`: a gate, the policy or middleware did not answer in time). */
  phase?: TimeoutPhase
  /** For `rate_limited`: the ms until a retry can succeed, as the capsule was told. */
  retryAfterMs?: number
  /** For `internal` errors: what was thrown on the host side (a middleware's or gate's bug, or ours), secrets redacted. */
  error?: { name: string; message: string; stack?: string }
  /** Secret occurrences replaced by `[redacted]` in what the capsule received. */
  redactions: number
  /** Response body bytes received (for a stream, counted to its end). */
  bytesIn: number
  /** Request body bytes sent. */
  bytesOut: number
  /** Redirect hops followed. */
  redirects: number
  /** How long the request took, in whole ms (a stream: until it ended or was closed). */
  durationMs: number
}

/** Receives each audit event as it is recorded; what it throws is swallowed. */
export type AuditListener = (event: AuditEvent) => void

/** Where a safe fetch writes its events: a listener, an async iterator, or a stream as JSON lines. */
export interface AuditSink {
  /** Takes one event as a JSON line (with its newline); a sink that throws is ignored for that line. */
  write(line: string): unknown
}

/** Events are kept for slow async iterators up to this many; older ones are dropped for that iterator. */
const ITERATOR_BUFFER = 10_000

export class AuditLog {
  readonly #listeners = new Set<AuditListener>()
  readonly #sinks: AuditSink[]
  /** Wakes every async iterator when the log closes. */
  readonly #closers = new Set<() => void>()
  #closed = false

  constructor(sinks: AuditSink[] = []) {
    this.#sinks = sinks
  }

  /** Calls `listener` for every event from now on; returns a function that stops it. */
  on(type: 'request', listener: AuditListener): () => void {
    if (type !== 'request') throw new TypeError('the only audit event type is "request"')
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Records one event. A listener or sink that throws cannot disturb the request. */
  record(event: AuditEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event)
      } catch {
        // Logging must never change what the capsule gets.
      }
    }
    if (this.#sinks.length > 0) {
      const line = `${JSON.stringify(event)}\n`
      for (const sink of this.#sinks) {
        try {
          sink.write(line)
        } catch {
          // As above.
        }
      }
    }
  }

  /** True once the runtime or safe fetch that owns the log has closed. */
  get closed(): boolean {
    return this.#closed
  }

  /** Ends every async iterator once it has yielded what was recorded before (the owner calls this on close). */
  close(): void {
    this.#closed = true
    for (const wake of this.#closers) wake()
  }

  /**
   * The events from now on, until the loop breaks or the log closes (the loop then ends after
   * the events recorded before the close). A slow reader keeps the newest 10,000.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<AuditEvent> {
    const queue: AuditEvent[] = []
    let wake: (() => void) | undefined
    const stop = this.on('request', (event) => {
      queue.push(event)
      if (queue.length > ITERATOR_BUFFER) queue.shift()
      wake?.()
    })
    const closer = () => wake?.()
    this.#closers.add(closer)
    try {
      for (;;) {
        while (queue.length > 0) yield queue.shift()!
        if (this.#closed) return
        await new Promise<void>((resolve) => (wake = resolve))
        wake = undefined
      }
    } finally {
      this.#closers.delete(closer)
      stop()
    }
  }
}
