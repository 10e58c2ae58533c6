// RequestControl: one request's stop through one listener on the caller's signal, its session's release and one deadline timer.
import { getEventListeners } from 'node:events'
import { afterEach, describe, expect, test, vi } from 'vitest'
import { CapsuleHostError } from '../src/errors.js'
import { RequestControl } from '../src/fetch/request-control.js'

afterEach(() => {
  vi.useRealTimers()
})

describe('RequestControl', () => {
  test('one listener on the caller signal while it runs, none after it ends; the registry holds it meanwhile', () => {
    const caller = new AbortController()
    const registry = new Set<RequestControl>()
    const control = new RequestControl(caller.signal, registry)
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(1)
    expect(registry.has(control)).toBe(true)
    control.end()
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0)
    expect(registry.size).toBe(0)
    caller.abort()
    expect(control.signal.aborted).toBe(false)
  })

  test.each([
    ['a reason that is a CapsuleHostError is kept', new CapsuleHostError('timeout', 'host said so', { phase: 'total' }), 'timeout'],
    ['any other reason is cancelled', new Error('user gave up'), 'cancelled'],
  ])('the caller aborts: %s', (_name, reason, code) => {
    const caller = new AbortController()
    const control = new RequestControl(caller.signal, new Set())
    caller.abort(reason)
    expect(control.signal.aborted).toBe(true)
    expect((control.signal.reason as CapsuleHostError).code).toBe(code)
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0)
  })

  test('a caller signal aborted already aborts the control at once, without a listener', () => {
    const caller = new AbortController()
    caller.abort()
    const registry = new Set<RequestControl>()
    const control = new RequestControl(caller.signal, registry)
    expect(control.signal.aborted).toBe(true)
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0)
    expect(registry.size).toBe(0)
  })

  test('the deadline aborts with timeout, phase total, at exactly its time and not before', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
    const control = new RequestControl(undefined, new Set())
    control.startDeadline(performance.now() + 50, 50)
    await vi.advanceTimersByTimeAsync(49)
    expect(control.signal.aborted).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(control.signal.reason).toMatchObject({ code: 'timeout', phase: 'total', message: 'the request took longer than 50 ms' })
  })

  test('end() clears the deadline: nothing aborts later', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
    const control = new RequestControl(undefined, new Set())
    control.startDeadline(performance.now() + 50, 50)
    control.end()
    await vi.advanceTimersByTimeAsync(100)
    expect(control.signal.aborted).toBe(false)
  })

  test('the first abort wins; later ones change nothing', () => {
    const control = new RequestControl(undefined, new Set())
    const first = new CapsuleHostError('cancelled', 'the capsule was released')
    control.abort(first)
    control.abort(new CapsuleHostError('timeout', 'late', { phase: 'total' }))
    expect(control.signal.reason).toBe(first)
  })
})
