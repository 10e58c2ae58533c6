// What a Node timer can hold: the schemas every time limit is validated with.
import { z } from 'zod'

/**
 * The longest delay `setTimeout` honours (2^31 - 1 ms, about 24.8 days). Node turns any longer
 * delay into 1 ms, so a larger limit would fire at once; every time limit is checked against this.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1

const tooLong = `must be at most ${MAX_TIMER_MS} ms (what a Node timer can hold)`

/** A time limit in whole milliseconds that a timer can hold. */
export const TimerMs = z.int().positive().max(MAX_TIMER_MS, tooLong)

/** A time limit that may also be Infinity, spelled explicitly, for "no limit". */
export const TimerMsOrInfinity = z.union([TimerMs, z.literal(Number.POSITIVE_INFINITY)], {
  error: `must be a whole number of ms from 1 to ${MAX_TIMER_MS}, or Infinity for no limit`,
})

/**
 * The whole milliseconds from now until `at` (a performance.now() time), rounded up, from 0 to MAX_TIMER_MS.
 * Node keeps one timer list per distinct delay: a fractional delay made a list and a priority
 * queue entry per timer (0.95 µs a setTimeout and clearTimeout against 0.25 µs here). Rounding
 * up never fires before `at`.
 */
export function delayUntil(at: number): number {
  // Never past what a timer holds: a longer delay would fire after 1 ms.
  return Math.min(MAX_TIMER_MS, Math.max(0, Math.ceil(at - performance.now())))
}
