// Deadlines for the host's own steps (a gate, the policy, middleware): a clock raced against the step.
import { listenForAbort, type StopSignal } from '../abort-listeners.js'
import { cancelledBy, CapsuleHostError, isCapsuleHostError } from '../errors.js'
import { delayUntil } from '../timers.js'

export { cancelledBy }

/** What one host step may spend, and what bounds it from outside. */
export interface HostBudget {
  /** `limits.hostTimeoutMs`: the longest one step may take. */
  readonly hostTimeoutMs: number
  /** The request's total deadline (a `performance.now()` time; Infinity: none) and the limit it stands for. */
  readonly deadline: number
  readonly totalTimeoutMs: number
  /** The caller's abort and the capsule's release: a step being waited for is given up at once. */
  readonly signal: StopSignal | undefined
}

/** Cancellations of a host step the request stopped waiting for (not errors a step threw itself). */
const STEP_CANCELLATIONS = new WeakSet<object>()

/** True for the error a host step's clock gives when the request is cancelled under it. */
export function isStepCancellation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && STEP_CANCELLATIONS.has(error)
}

function stepCancelled(signal: StopSignal): CapsuleHostError {
  const error = cancelledBy(signal)
  STEP_CANCELLATIONS.add(error)
  return error
}


/** `timeout`, phase `host`, credited to the step; the message is safe to show the capsule. */
function hostTimeout(step: string, budget: HostBudget, byTotal: boolean): CapsuleHostError {
  const message = byTotal
    ? `the host's ${step} did not answer before the request's ${budget.totalTimeoutMs} ms time limit ran out`
    : `the host's ${step} did not answer within ${budget.hostTimeoutMs} ms`
  return new CapsuleHostError('timeout', message, { phase: 'host', decidedBy: step, detail: message })
}

/** True for the request's total-deadline error (its control's reason when the deadline passes). */
function isTotalTimeout(error: unknown): boolean {
  return isCapsuleHostError(error) && error.code === 'timeout' && error.phase === 'total'
}

/** A host step's error for its signal's abort: the request's total deadline passing is the step's own timeout; anything else cancels it. */
function stepStopped(step: string, budget: HostBudget, signal: StopSignal): CapsuleHostError {
  return isTotalTimeout(signal.reason) ? hostTimeout(step, budget, true) : stepCancelled(signal)
}

/** True for the error a host step's clock gives when it runs out. */
export function isHostTimeout(error: unknown): error is CapsuleHostError {
  return isCapsuleHostError(error) && error.code === 'timeout' && error.phase === 'host'
}

/**
 * The clock of one host step: `expired` rejects with `timeout` (phase `host`) once the step has
 * run for `hostTimeoutMs` or the request's deadline passes (its control aborts the signal with a
 * total timeout), whichever is first, and with `cancelled` when the signal aborts otherwise. `pause()`/`resume()` stop the clock while the step waits on
 * work that has its own limits (the network inside `next()`). `stop()` clears every timer.
 */
export class HostClock {
  readonly expired: Promise<never>
  readonly #budget: HostBudget
  readonly #step: string
  #remaining: number
  #since = 0
  #timer: NodeJS.Timeout | undefined
  #stopped = false
  #fail: (error: CapsuleHostError) => void = () => undefined
  #stopListening: () => void = () => {}

  constructor(budget: HostBudget, step: string) {
    this.#budget = budget
    this.#step = step
    this.#remaining = budget.hostTimeoutMs
    this.expired = new Promise<never>((_, reject) => (this.#fail = reject))
    // Nobody may be racing it any more when it fires; that is not an unhandled rejection.
    this.expired.catch(() => undefined)
    if (budget.signal?.aborted) {
      this.#end(stepStopped(this.#step, budget, budget.signal))
    } else {
      this.#stopListening = listenForAbort(budget.signal, () => this.#end(stepStopped(this.#step, budget, budget.signal!)))
      this.resume()
    }
  }

  resume(): void {
    if (this.#stopped || this.#timer) return
    const now = performance.now()
    this.#since = now
    // The request's control also aborts the signal at the deadline (see stepStopped): the same error either way.
    const byTotal = this.#budget.deadline < now + this.#remaining
    const at = byTotal ? this.#budget.deadline : now + this.#remaining
    this.#timer = setTimeout(() => this.#end(hostTimeout(this.#step, this.#budget, byTotal)), delayUntil(at))
  }

  pause(): void {
    if (!this.#timer) return
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#remaining -= performance.now() - this.#since
  }

  stop(): void {
    this.pause()
    this.#stopped = true
    this.#stopListening()
  }


  #end(error: CapsuleHostError): void {
    this.stop()
    this.#fail(error)
  }
}

/**
 * Runs one host callback under its own clock. The first to settle wins: the callback's answer,
 * or the clock's timeout; a late answer (or a late failure) of the callback is ignored.
 */
export async function withinHostTime<T>(budget: HostBudget, step: string, work: () => T | PromiseLike<T>): Promise<T> {
  if (budget.signal?.aborted) throw stepStopped(step, budget, budget.signal)
  const clock = new HostClock(budget, step)
  try {
    return await Promise.race([new Promise<T>((resolve) => resolve(work())), clock.expired])
  } finally {
    clock.stop()
  }
}
