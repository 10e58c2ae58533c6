// PhaseTimers: the connect, first_byte and idle phases of one hop timed with one Node timer, each timing out at its own due time.
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest'
import type { CapsuleHostError } from '../src/errors.js'
import { PhaseTimers } from '../src/net/transport/timeouts.js'
import { normaliseUrl } from '../src/url/normalise.js'

const url = normaliseUrl('http://phases.test:8080/x')

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
})
afterEach(() => {
  vi.useRealTimers()
})

function timers() {
  const fired: CapsuleHostError[] = []
  return { fired, phases: new PhaseTimers(url, (error) => fired.push(error)) }
}

describe('PhaseTimers', () => {
  test.each([
    // [what, steps: [ms to advance before, phase, budget ms], when the timeout fires (ms from start), its phase]
    ['connect alone', [[0, 'connect', 100]], 100, 'connect'],
    ['first_byte after connect, longer: the armed timer fires early and is armed again', [[0, 'connect', 100], [30, 'first_byte', 200]], 230, 'first_byte'],
    ['first_byte after connect, shorter: armed sooner', [[0, 'connect', 100], [10, 'first_byte', 20]], 30, 'first_byte'],
    ['idle restarted by each chunk', [[0, 'idle', 50], [40, 'idle', 50], [40, 'idle', 50]], 130, 'idle'],
  ] as const)('%s', async (_what, steps, firesAt, phase) => {
    const { fired, phases } = timers()
    let now = 0
    for (const [advance, name, ms] of steps) {
      await vi.advanceTimersByTimeAsync(advance)
      now += advance
      phases.start(name, ms)
    }
    await vi.advanceTimersByTimeAsync(firesAt - now - 1)
    expect(fired).toHaveLength(0)
    await vi.advanceTimersByTimeAsync(1)
    expect(fired.map((e) => [e.code, e.phase])).toEqual([['timeout', phase]])
    await vi.advanceTimersByTimeAsync(10_000)
    expect(fired).toHaveLength(1)
  })

  test('stopPhase: nothing is due, the armed timer ends quietly; a later start times again', async () => {
    const { fired, phases } = timers()
    phases.start('connect', 100)
    phases.stopPhase()
    await vi.advanceTimersByTimeAsync(1000)
    expect(fired).toHaveLength(0)
    phases.start('idle', 10)
    await vi.advanceTimersByTimeAsync(10)
    expect(fired.map((e) => e.phase)).toEqual(['idle'])
  })

  test('stop: no phase fires, and a start after it is ignored', async () => {
    const { fired, phases } = timers()
    phases.start('connect', 100)
    phases.stop()
    phases.start('idle', 5)
    await vi.advanceTimersByTimeAsync(1000)
    expect(fired).toHaveLength(0)
  })

  test('an infinite budget times nothing; a timer armed for an earlier phase finds nothing due', async () => {
    const { fired, phases } = timers()
    phases.start('connect', 100)
    phases.start('first_byte', Number.POSITIVE_INFINITY)
    await vi.advanceTimersByTimeAsync(10_000)
    expect(fired).toHaveLength(0)
  })

  test('the message names the host and the budget', async () => {
    const { fired, phases } = timers()
    phases.start('connect', 100, 40)
    await vi.advanceTimersByTimeAsync(40)
    expect(fired[0]?.message).toBe('connecting to phases.test:8080 took longer than 100 ms')
  })
})
