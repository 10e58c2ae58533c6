// Capsule.call's queue: calls to one capsule never overlap, run in order, and a call to an idle capsule starts at once.
import { describe, expect, test } from 'vitest'
import { CapsuleError } from '../src/errors.js'
import { Capsule, type CapsuleEngine } from '../src/runtime/capsule.js'

/** An engine whose calls end when the test says: it records when each starts and whether two overlap. */
function heldEngine() {
  const started: string[] = []
  const pending: Array<{ input: string; resolve: (bytes: Uint8Array) => void; reject: (error: unknown) => void }> = []
  let running = 0
  let overlapped = false
  const engine: CapsuleEngine = {
    alive: true,
    call(_name, input) {
      const text = Buffer.from(input).toString()
      started.push(text)
      if (++running > 1) overlapped = true
      return new Promise<Uint8Array>((resolve, reject) => {
        const done = <T>(finish: (value: T) => void) => (value: T) => {
          running--
          finish(value)
        }
        pending.push({ input: text, resolve: done(resolve), reject: done(reject) })
      })
    },
    close: async () => undefined,
  }
  /** Ends the oldest running call; with `error`, it fails. */
  const endNext = (error?: unknown) => {
    const call = pending.shift()!
    if (error) call.reject(error)
    else call.resolve(Buffer.from(`out:${call.input}`))
  }
  const capsule = new Capsule('q', engine, new Set(['run']), 60_000, async () => undefined)
  return { capsule, started, endNext, overlapped: () => overlapped, flush: () => new Promise((r) => setImmediate(r)) }
}

describe('Capsule.call queue', () => {
  test('a call to an idle capsule reaches its engine before call() returns', () => {
    const { capsule, started } = heldEngine()
    void capsule.call('run', 'a')
    expect(started).toEqual(['a'])
  })

  test('calls made at once start one after another, in order, never overlapping', async () => {
    const { capsule, started, endNext, overlapped, flush } = heldEngine()
    const calls = ['a', 'b', 'c'].map((input) => capsule.call('run', input))
    expect(started).toEqual(['a'])
    for (const seen of [['a', 'b'], ['a', 'b', 'c']]) {
      endNext()
      await flush()
      expect(started).toEqual(seen)
    }
    endNext()
    expect((await Promise.all(calls)).map((out) => out.text())).toEqual(['out:a', 'out:b', 'out:c'])
    expect(overlapped()).toBe(false)
  })

  test('a call queued behind one that fails still runs, and the failure reaches only its own caller', async () => {
    const { capsule, started, endNext, flush } = heldEngine()
    const first = capsule.call('run', 'a')
    const second = capsule.call('run', 'b')
    endNext(new CapsuleError('capsule_failed', 'the call failed'))
    await expect(first).rejects.toMatchObject({ code: 'capsule_failed' })
    await flush()
    expect(started).toEqual(['a', 'b'])
    endNext()
    expect((await second).text()).toBe('out:b')
  })

  test('the call after one that ended starts at once again (the capsule is idle)', async () => {
    const { capsule, started, endNext } = heldEngine()
    const first = capsule.call('run', 'a')
    endNext()
    await first
    void capsule.call('run', 'b')
    expect(started).toEqual(['a', 'b'])
  })

  test.each([
    ['no such export', 'nope', 'no_such_export'],
    ['an input with no JSON form', 'run', 'invalid_input'],
  ])('a call refused before its engine runs (%s) leaves the queue working', async (_, name, code) => {
    const { capsule, started, endNext } = heldEngine()
    const refused = capsule.call(name, name === 'run' ? { big: 1n } : 'x')
    await expect(refused).rejects.toMatchObject({ code })
    expect(started).toEqual([])
    const next = capsule.call('run', 'b')
    expect(started).toEqual(['b'])
    endNext()
    expect((await next).text()).toBe('out:b')
  })
})
