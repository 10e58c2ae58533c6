// The pool worker's linger: how long its loop stays awake after a message, off when the cores are busy, and that it stops by itself.
import { describe, expect, test } from 'vitest'
import { Linger, LINGER_LIMITS } from '../src/runtime/linger.js'

const cores = 2
const linger = (busy: number) => new Linger(Int32Array.of(busy), cores)

/** Turns the event loop until the linger's chain has stopped (it must, within the turns allowed). */
async function untilStopped(subject: Linger, turns = 1_000_000): Promise<void> {
  for (let i = 0; i < turns && subject.running; i++) await new Promise((resolve) => setImmediate(resolve))
}

describe('the pool worker linger', () => {
  test.each([
    ['no gaps yet: the cap', [], 0, LINGER_LIMITS.capMs],
    ['twice the median gap', [0.1, 0.2, 0.3], 0, 0.4],
    ['median exactly half the cap', [0.5, 0.5, 0.5], 0, LINGER_LIMITS.capMs],
    ['median over half the cap: no linger', [0.5, 0.6, 0.7], 0, 0],
    ['long gaps: no linger', [5, 9, 20], 0, 0],
    ['one busy call on 2 cores', [], 1, LINGER_LIMITS.capMs],
    ['as many busy calls as cores: no linger', [], 2, 0],
    ['more busy calls than cores: no linger', [0.1], 17, 0],
  ])('budget with %s', (_, gaps, busy, budget) => {
    const subject = new Linger(Int32Array.of(busy as number), cores)
    for (const gap of gaps as number[]) subject.record(gap)
    expect(subject.budgetMs()).toBeCloseTo(budget as number, 9)
  })

  test('a message with the cores busy starts nothing and is counted as skipped', () => {
    const subject = linger(cores)
    subject.message()
    subject.posted()
    expect(subject.running).toBe(false)
    expect(subject.counts).toEqual({ ticks: 0, skipped: 2 })
  })

  test.each([
    ['a message', (s: Linger) => s.message()],
    ['a post', (s: Linger) => s.posted()],
  ])('after %s the loop lingers, then the chain stops by itself', async (_, poke) => {
    const subject = linger(0)
    poke(subject)
    expect(subject.running).toBe(true)
    await untilStopped(subject)
    expect(subject.running).toBe(false)
    expect(subject.counts.ticks).toBeGreaterThan(0)
    expect(subject.counts.skipped).toBe(0)
  })

  test('more messages while it lingers do not start a second chain', async () => {
    const subject = linger(0)
    subject.message()
    subject.message()
    subject.posted()
    await new Promise((resolve) => setImmediate(resolve))
    const ticks = subject.counts.ticks
    expect(ticks).toBe(1) // one chain: one turn, one tick
    await untilStopped(subject)
  })

  test('the chain stops at once when the cores become busy', async () => {
    const busy = Int32Array.of(0)
    const subject = new Linger(busy, cores)
    subject.message()
    busy[0] = cores
    await new Promise((resolve) => setImmediate(resolve))
    expect(subject.running).toBe(false)
    expect(subject.counts.ticks).toBe(1)
  })
})
