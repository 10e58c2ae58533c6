// Per-phase timers (connect, first_byte, idle) and the total deadline of one hop; each fires a timeout error.
import { CapsuleHostError, type TimeoutPhase } from '../../errors.js'
import type { NormalisedUrl } from '../../url/normalise.js'

/** The phases the transport times; `host` belongs to the host's own steps. */
export type NetworkPhase = Exclude<TimeoutPhase, 'host'>

export function timeoutError(phase: NetworkPhase, ms: number, url: NormalisedUrl): CapsuleHostError {
  const what = {
    connect: `connecting to ${url.host}`,
    first_byte: `waiting for the response from ${url.host}`,
    idle: `waiting for the next body chunk from ${url.host}`,
    total: `the request to ${url.host}`,
  }[phase]
  return new CapsuleHostError('timeout', `${what} took longer than ${Math.round(ms)} ms`, { phase })
}

/** One phase timer at a time, plus the deadline; `onTimeout` gets the error of whichever fires. */
export class PhaseTimers {
  #phase: NodeJS.Timeout | undefined
  #deadline: NodeJS.Timeout | undefined
  readonly #url: NormalisedUrl
  readonly #onTimeout: (error: CapsuleHostError) => void

  constructor(url: NormalisedUrl, onTimeout: (error: CapsuleHostError) => void) {
    this.#url = url
    this.#onTimeout = onTimeout
  }

  /** Arms the total deadline (absolute, performance.now()); `totalMs` is for the message. */
  deadline(at: number, totalMs: number): void {
    const remaining = at - performance.now()
    if (!Number.isFinite(remaining)) return
    this.#deadline = setTimeout(() => this.#onTimeout(timeoutError('total', totalMs, this.#url)), Math.max(0, remaining))
  }

  /** Runs the timer of one phase, replacing the current one; `wait` defaults to the phase's budget `ms`. */
  start(phase: NetworkPhase, ms: number, wait = ms): void {
    clearTimeout(this.#phase)
    this.#phase = Number.isFinite(ms)
      ? setTimeout(() => this.#onTimeout(timeoutError(phase, ms, this.#url)), Math.max(0, wait))
      : undefined
  }

  /** Stops the current phase timer (the deadline keeps running). */
  stopPhase(): void {
    clearTimeout(this.#phase)
  }

  /** Stops everything. */
  stop(): void {
    clearTimeout(this.#phase)
    clearTimeout(this.#deadline)
  }
}
