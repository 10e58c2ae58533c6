// delayUntil: timer delays in whole milliseconds, rounded up so a timer never fires before its time.
import { describe, expect, test, vi } from 'vitest'
import { delayUntil } from '../src/timers.js'

describe('delayUntil', () => {
  test.each([
    ['a fraction of a ms ahead is 1 ms', 0.2, 1],
    ['a whole ms ahead stays whole', 5, 5],
    ['a fraction over rounds up, never early', 5.01, 6],
    ['a time passed is 0', -3, 0],
  ])('%s', (_name, ahead, expected) => {
    // A fixed `now`, so the row does not depend on how long the test takes.
    const now = performance.now()
    const spy = vi.spyOn(performance, 'now').mockReturnValue(now)
    try {
      expect(delayUntil(now + ahead)).toBe(expected)
    } finally {
      spy.mockRestore()
    }
  })
})
