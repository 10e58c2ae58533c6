// The audit log: one structured event per request or stream, to listeners, async iterators and JSON lines.
import type { ErrorCode, TimeoutPhase } from './errors.js'

/** One request's outcome. Never contains a query string, a header or a body. */
export interface AuditEvent {
  capsuleId: string
  /** Unique within this safe fetch: `<capsuleId>#<n>`. */
  requestId: string
  kind: 'request' | 'stream'
  method: string | undefined
  /** Origin and path, with any query string replaced by `?…`. Undefined when the URL was invalid. */
  url: string | undefined
  /**
   * False when validation, a gate, the address policy or the stream table refused the request
   * (a gate or the policy that did not answer in time refused it too).
   */
  allowed: boolean
  /** The rule, route, policy, gate or check that decided. */
  decidedBy: string | undefined
  /** Why a request was refused or failed (host-side: may name the private address a name resolved to). */
  reason?: string
  /** The class of the address dialled, or of the blocked address that refused the request. */
  addressClass?: string
  status?: number
  code?: ErrorCode
  /** For `timeout`: which wait ran out (`host`: a gate, the policy or middleware did not answer in time). */
  phase?: TimeoutPhase
  /** Body bytes received (for a stream, counted to its end) and sent. */
  bytesIn: number
  bytesOut: number
  /** Redirect hops followed. */
  redirects: number
  durationMs: number
}

export type AuditListener = (event: AuditEvent) => void

/** Where a safe fetch writes its events: a listener, an async iterator, or a stream as JSON lines. */
export interface AuditSink {
  write(line: string): unknown
}

/** Events are kept for slow async iterators up to this many; older ones are dropped for that iterator. */
const ITERATOR_BUFFER = 10_000

export class AuditLog {
  readonly #listeners = new Set<AuditListener>()
  readonly #sinks: AuditSink[]

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

  /** The events from now on, until the loop breaks. A slow reader keeps the newest 10,000. */
  async *[Symbol.asyncIterator](): AsyncGenerator<AuditEvent> {
    const queue: AuditEvent[] = []
    let wake: (() => void) | undefined
    const stop = this.on('request', (event) => {
      queue.push(event)
      if (queue.length > ITERATOR_BUFFER) queue.shift()
      wake?.()
    })
    try {
      for (;;) {
        while (queue.length > 0) yield queue.shift()!
        await new Promise<void>((resolve) => (wake = resolve))
        wake = undefined
      }
    } finally {
      stop()
    }
  }
}
