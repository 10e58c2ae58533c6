// RequestSlots and listenForAbort: a capsule's concurrency bound (free slot at once, FIFO waits, abort and release) and abort listeners through a request's control.
import { getEventListeners } from 'node:events'
import { AsyncLocalStorage } from 'node:async_hooks'
import { describe, expect, test, vi } from 'vitest'
import { listenForAbort } from '../src/abort-listeners.js'
import { CapsuleHostError } from '../src/errors.js'
import { RequestControl } from '../src/fetch/request-control.js'
import { RequestSlots } from '../src/fetch/request-slots.js'

function deferred<T = void>() {
  let resolve!: (value: T) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<T>((yes, no) => {
    resolve = yes
    reject = no
  })
  return { promise, resolve, reject }
}

const codeOf = (error: unknown) => (error as CapsuleHostError).code
const live = () => new AbortController().signal

describe('RequestSlots', () => {
  test('a free slot runs the work before run() returns; a full one makes it wait', () => {
    const slots = new RequestSlots(1)
    const order: string[] = []
    const first = deferred()
    void slots.run(() => (order.push('first'), first.promise), live())
    void slots.run(() => (order.push('second'), Promise.resolve()), live())
    expect(order).toEqual(['first'])
    expect([slots.active, slots.waiting]).toEqual([1, 1])
  })

  test.each([1, 2, 3])('concurrency %i: never more at once, and the waits start first in, first out', async (concurrency) => {
    const slots = new RequestSlots(concurrency)
    const gates = Array.from({ length: 8 }, () => deferred())
    const started: number[] = []
    let running = 0
    let most = 0
    const runs = gates.map((gate, i) =>
      slots.run(async () => {
        started.push(i)
        most = Math.max(most, ++running)
        await gate.promise
        running--
        return i
      }, live()),
    )
    for (const gate of gates) gate.resolve()
    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    expect(most).toBe(concurrency)
    expect([slots.active, slots.waiting]).toEqual([0, 0])
  })

  test('a work that throws or rejects gives its slot back', async () => {
    const slots = new RequestSlots(1)
    await expect(slots.run(() => { throw new Error('sync') }, live())).rejects.toThrow('sync')
    await expect(slots.run(() => Promise.reject(new Error('async')), live())).rejects.toThrow('async')
    expect(slots.active).toBe(0)
    await expect(slots.run(() => Promise.resolve('ok'), live())).resolves.toBe('ok')
  })

  test.each([
    ['cancelled', new CapsuleHostError('cancelled', 'the caller gave up'), 'cancelled'],
    ['timeout at the deadline', new CapsuleHostError('timeout', 'too slow', { phase: 'total' }), 'timeout'],
  ])('a wait ends with the signal reason (%s), its place is dropped and the next wait gets the slot', async (_name, reason, code) => {
    const slots = new RequestSlots(1)
    const first = deferred()
    void slots.run(() => first.promise, live())
    const control = new AbortController()
    const abandoned = slots.run(() => Promise.resolve('never'), control.signal)
    const third = slots.run(() => Promise.resolve('third'), live())
    expect(getEventListeners(control.signal, 'abort')).toHaveLength(1)
    control.abort(reason)
    await expect(abandoned).rejects.toSatisfy((error) => codeOf(error) === code)
    expect(slots.waiting).toBe(1)
    first.resolve()
    await expect(third).resolves.toBe('third')
  })

  test('a wait that gets its slot stops listening to its signal', async () => {
    const slots = new RequestSlots(1)
    const first = deferred()
    void slots.run(() => first.promise, live())
    const signal = live()
    let ran = false
    const second = slots.run(async () => void (ran = true), signal)
    expect(getEventListeners(signal, 'abort')).toHaveLength(1)
    first.resolve()
    await second
    expect(ran).toBe(true)
    expect(getEventListeners(signal, 'abort')).toHaveLength(0)
  })

  test('each waiting call runs in the async context it was made in, not in the one that gave the slot back', async () => {
    const slots = new RequestSlots(1)
    const context = new AsyncLocalStorage<string>()
    const seen: Array<string | undefined> = []
    const gates = { A: deferred(), B: deferred(), C: deferred() }
    const runs = (['A', 'B', 'C'] as const).map((name) =>
      context.run(name, () =>
        slots.run(async () => {
          seen.push(context.getStore())
          await gates[name].promise
          seen.push(context.getStore())
        }, live()),
      ),
    )
    gates.A.resolve()
    gates.B.resolve()
    gates.C.resolve()
    await Promise.all(runs)
    expect(seen).toEqual(['A', 'A', 'B', 'B', 'C', 'C'])
  })

  test('an aborted signal is refused at once, slot free or not', async () => {
    const slots = new RequestSlots(1)
    const control = new AbortController()
    control.abort(new CapsuleHostError('cancelled', 'gone'))
    let ran = false
    await expect(slots.run(async () => void (ran = true), control.signal)).rejects.toSatisfy((error) => codeOf(error) === 'cancelled')
    expect(ran).toBe(false)
    expect(slots.active).toBe(0)
  })

  test('clear(reason) ends every wait with the release\'s cancelled; the work running goes on and its slot comes back', async () => {
    const slots = new RequestSlots(1)
    const first = deferred<string>()
    const running = slots.run(() => first.promise, live())
    const waits = [slots.run(() => Promise.resolve(1), live()), slots.run(() => Promise.resolve(2), live())]
    const released = new CapsuleHostError('cancelled', 'the capsule was released')
    slots.clear(released)
    for (const wait of waits) await expect(wait).rejects.toBe(released)
    expect(slots.waiting).toBe(0)
    first.resolve('done')
    await expect(running).resolves.toBe('done')
    expect(slots.active).toBe(0)
  })

  test('a wait on a request control listens through the control: no AbortSignal, no EventTarget listener', async () => {
    const slots = new RequestSlots(1)
    const first = deferred()
    void slots.run(() => first.promise, live())
    const control = new RequestControl(undefined, new Set())
    const added = vi.spyOn(EventTarget.prototype, 'addEventListener')
    let waiting: Promise<void>
    try {
      waiting = slots.run(() => Promise.resolve(), control)
      expect(added).not.toHaveBeenCalled()
    } finally {
      added.mockRestore()
    }
    control.abort(new CapsuleHostError('cancelled', 'released'))
    await expect(waiting).rejects.toSatisfy((error) => codeOf(error) === 'cancelled')
  })
})

describe('listenForAbort', () => {
  test('a control calls its listeners once, after it aborted (with the first reason), and never one that stopped', () => {
    const control = new RequestControl(undefined, new Set())
    const heard: string[] = []
    listenForAbort(control, () => heard.push(`first ${String(control.aborted)} ${(control.reason as CapsuleHostError).message}`))
    const stop = listenForAbort(control, () => heard.push('stopped'))
    stop()
    stop()
    control.abort(new CapsuleHostError('cancelled', 'x'))
    control.abort(new CapsuleHostError('cancelled', 'again'))
    expect(heard).toEqual(['first true x'])
  })

  test('a control calls its listeners in the order added, skips one removed meanwhile, and one that throws stops nothing', async () => {
    const registry = new Set<RequestControl>()
    const control = new RequestControl(undefined, registry)
    const heard: string[] = []
    let stopC = () => {}
    listenForAbort(control, () => {
      heard.push('a')
      stopC()
    })
    listenForAbort(control, () => {
      heard.push('b')
      throw new Error('a listener failed')
    })
    stopC = listenForAbort(control, () => heard.push('c'))
    listenForAbort(control, () => heard.push('d'))
    const rethrown = new Promise<unknown>((resolve) => process.once('uncaughtException', resolve))
    control.abort(new CapsuleHostError('cancelled', 'x'))
    expect(heard).toEqual(['a', 'b', 'd'])
    // The control ended all the same: out of its registry.
    expect(registry.size).toBe(0)
    expect(((await rethrown) as Error).message).toBe('a listener failed')
  })

  test('any other signal gets one DOM listener, removed when listening stops', () => {
    const controller = new AbortController()
    let heard = 0
    const stop = listenForAbort(controller.signal, () => heard++)
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1)
    stop()
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0)
    listenForAbort(controller.signal, () => heard++)
    controller.abort()
    controller.abort()
    expect(heard).toBe(1)
  })

  test('no signal: nothing to listen to, and stopping is harmless', () => {
    expect(() => listenForAbort(undefined, () => {})()).not.toThrow()
  })
})

describe('RequestControl without an AbortSignal', () => {
  test('asked for after it aborted, its signal is aborted with the same reason; asked before, it aborts with it', () => {
    const late = new RequestControl(undefined, new Set())
    const reason = new CapsuleHostError('timeout', 'too slow', { phase: 'total' })
    late.abort(reason)
    expect([late.signal.aborted, late.signal.reason]).toEqual([true, reason])
    const early = new RequestControl(undefined, new Set())
    const { signal } = early
    expect(signal.aborted).toBe(false)
    early.abort(reason)
    expect([signal.aborted, signal.reason, early.signal]).toEqual([true, reason, signal])
  })
})
