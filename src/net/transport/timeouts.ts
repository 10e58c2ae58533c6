// Times the phases (connect, first_byte, idle) of one hop with one Node timer; each fires a timeout error. The total deadline is the request control's.
import { delayUntil } from '../../timers.js'
import { CapsuleHostError, type TimeoutPhase } from '../../errors.js'
import type { NormalisedUrl } from '../../url/normalise.js'

/** The phases a hop times; `total` is the request control's and `host` the host's own steps'. */
export type NetworkPhase = Exclude<TimeoutPhase, 'host' | 'total'>

export function timeoutError(phase: NetworkPhase, ms: number, url: NormalisedUrl): CapsuleHostError {
  const what = {
    connect: `connecting to ${url.host}`,
    first_byte: `waiting for the response from ${url.host}`,
    idle: `waiting for the next body chunk from ${url.host}`,
  }[phase]
  return new CapsuleHostError('timeout', `${what} took longer than ${Math.round(ms)} ms`, { phase })
}

/** The phase being timed: which one, its budget (for the message) and when it runs out (performance.now() time). */
interface TimedPhase {
  readonly phase: NetworkPhase
  readonly ms: number
  readonly due: number
}

/**
 * One phase timed at a time (the total deadline is the request's control's); `onTimeout` gets its
 * error. A hop moves through connect, first_byte and idle phases, and each start would cost a
 * clearTimeout and a setTimeout; instead one Node timer is kept, armed for the earliest time
 * anything can run out. A phase that starts later than it simply moves the due time: when the
 * timer fires early for it, it is armed again for the rest. A hop that ends in time costs one
 * setTimeout and one clearTimeout.
 */
export class PhaseTimers {
  #current: TimedPhase | undefined
  #timer: NodeJS.Timeout | undefined
  /** When the armed timer fires (performance.now() time). */
  #firesAt = Number.POSITIVE_INFINITY
  #stopped = false
  readonly #url: NormalisedUrl
  readonly #onTimeout: (error: CapsuleHostError) => void
  readonly #fire = () => this.#fired()

  constructor(url: NormalisedUrl, onTimeout: (error: CapsuleHostError) => void) {
    this.#url = url
    this.#onTimeout = onTimeout
  }

  /** Times one phase, replacing the current one; `wait` defaults to the phase's budget `ms`. */
  start(phase: NetworkPhase, ms: number, wait = ms): void {
    if (this.#stopped) return
    if (!Number.isFinite(ms)) return void (this.#current = undefined)
    const due = performance.now() + Math.max(0, wait)
    this.#current = { phase, ms, due }
    if (due < this.#firesAt) this.#arm(due)
  }

  /** Stops timing the current phase (a timer still armed finds nothing due and ends). */
  stopPhase(): void {
    this.#current = undefined
  }

  /** Stops everything; no phase is timed after this. */
  stop(): void {
    this.#stopped = true
    this.#current = undefined
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #arm(at: number): void {
    clearTimeout(this.#timer)
    this.#firesAt = at
    this.#timer = setTimeout(this.#fire, delayUntil(at))
  }

  #fired(): void {
    this.#timer = undefined
    this.#firesAt = Number.POSITIVE_INFINITY
    const current = this.#current
    if (current === undefined || this.#stopped) return
    // Node's millisecond clock may fire a fraction early: within a millisecond of due is due.
    if (current.due - performance.now() > 1) return this.#arm(current.due)
    this.stop()
    this.#onTimeout(timeoutError(current.phase, current.ms, this.#url))
  }
}
