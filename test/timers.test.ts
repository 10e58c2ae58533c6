// delayUntil: timer delays in whole milliseconds, rounded up so a timer never fires before its time.
import { describe, expect, test, vi } from 'vitest'
import { delayUntil, MAX_TIMER_MS } from '../src/timers.js'

describe('delayUntil', () => {
  test.each([
    // [what, now, at, delay]: `now` and `at` exact in binary, so no row depends on rounding error.
    ['a fraction of a ms ahead is 1 ms', 1024, 1024.25, 1],
    ['a whole ms ahead stays whole', 1024, 1029, 5],
    ['a fraction over rounds up, never early', 1024, 1029.125, 6],
    ['now is 0', 1024, 1024, 0],
    ['a time passed is 0', 1024, 1021, 0],
    ['the longest a timer holds stays', 0, MAX_TIMER_MS, MAX_TIMER_MS],
    ['longer is cut to the longest a timer holds (Node would fire it after 1 ms)', 0, MAX_TIMER_MS + 1.5, MAX_TIMER_MS],
  ])('%s', (_name, now, at, expected) => {
    const spy = vi.spyOn(performance, 'now').mockReturnValue(now)
    try {
      expect(delayUntil(at)).toBe(expected)
    } finally {
      spy.mockRestore()
    }
  })
})
