// A capsule's buffered requests in flight, at most `limits.maxConcurrentRequests`: a free slot runs at once, the rest wait in order.
import { AsyncResource } from 'node:async_hooks'
import { CapsuleHostError } from '../errors.js'
import { cancelledBy } from './host-deadline.js'
import { listenForAbort, type StopSignal } from '../abort-listeners.js'

interface Waiter {
  readonly start: () => void
  readonly fail: (error: CapsuleHostError) => void
}

/**
 * Bounds the work running at once. A call with a slot free runs its work synchronously: no
 * promise, microtask or queue entry of its own (p-limit 7 made seven promises and ran the work a
 * microtask later on every call). A call without one waits, first in first out, until a slot is
 * given back, the request's signal aborts (its wait ends with the signal's reason and its place
 * is dropped), or `clear(reason)` ends every wait with the release's `cancelled`. A waiting call's work runs in the
 * async context the call was made in (AsyncLocalStorage, OpenTelemetry's context), as p-limit's did.
 */
export class RequestSlots {
  readonly concurrency: number
  #active = 0
  readonly #waiting = new Set<Waiter>()

  constructor(concurrency: number) {
    this.concurrency = concurrency
  }

  /** Work running now. */
  get active(): number {
    return this.#active
  }

  /** Calls waiting for a slot. */
  get waiting(): number {
    return this.#waiting.size
  }

  /** Runs `work` in a slot, now or once one is free; the slot is given back when its promise settles. */
  run<T>(work: () => Promise<T>, signal: StopSignal): Promise<T> {
    if (signal.aborted) return Promise.reject(cancelledBy(signal))
    if (this.#active < this.concurrency && this.#waiting.size === 0) return this.#start(work)
    return new Promise<T>((resolve, reject) => {
      const stopListening = listenForAbort(signal, () => {
        this.#waiting.delete(waiter)
        reject(cancelledBy(signal))
      })
      const waiter: Waiter = {
        // Bound to this call's async context: the slot is given back inside another request's
        // promise reaction, and the work (gates, resolver, quota store, telemetry) must see its own.
        start: AsyncResource.bind(() => {
          stopListening()
          resolve(this.#start(work))
        }),
        fail: (error) => {
          stopListening()
          reject(error)
        },
      }
      this.#waiting.add(waiter)
    })
  }

  /** Ends every wait with `reason` (the capsule was released: `cancelled`); work already running goes on. */
  clear(reason: CapsuleHostError): void {
    const waiting = [...this.#waiting]
    this.#waiting.clear()
    for (const waiter of waiting) waiter.fail(reason)
  }

  #start<T>(work: () => Promise<T>): Promise<T> {
    this.#active++
    let running: Promise<T>
    try {
      running = work()
    } catch (error) {
      this.#release()
      return Promise.reject(error)
    }
    running.then(this.#release, this.#release)
    return running
  }

  readonly #release = (): void => {
    this.#active--
    const next = this.#waiting.values().next()
    if (next.done) return
    this.#waiting.delete(next.value)
    next.value.start()
  }
}
