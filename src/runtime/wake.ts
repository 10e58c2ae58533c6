// Keeps the main thread's event loop from sleeping while worker and pool calls are in flight: a setImmediate chain polls the channels.
import { availableParallelism } from 'node:os'
import { RecentWaits } from './spin.js'

/** A main-thread wait on one channel word that the chain polls, or that sleeps until the worker rings. */
export interface Watch {
  /** Checks the word; true when the wait is over (the watch is then dropped). */
  poll(): boolean
  /** The chain stopped: wait for the worker's ring instead (Atomics.waitAsync), then call `awake.woken`. */
  park(): void
  /** The chain runs again: the worker need not ring. */
  unpark(): void
}

/** The chain stops when no watch has ended for this long (ms): at least `minMs`, at most `maxMs`, else twice the recent median gap. */
export const KEEP_AWAKE_LIMITS = { minMs: 1, maxMs: 5, factor: 2 }

/**
 * The process-wide keep-awake. `hold`/`release` count the worker and pool calls in flight (also in the
 * shared `busy` word that workers read before they spin); while any is in flight, a setImmediate
 * chain polls every watch once per turn of the event loop, so the loop never blocks in its poll
 * phase and a worker's message is seen within one turn. Timers, I/O and other work run as usual.
 * When nothing has happened for a while (KEEP_AWAKE_LIMITS) or no call is in flight, the chain
 * stops and every watch sleeps on Atomics.waitAsync until its worker rings.
 */
export class KeepAwake {
  /** How many worker calls are in flight, shared with the workers. */
  readonly busy = new Int32Array(new SharedArrayBuffer(4))
  readonly cores = availableParallelism()
  /** Turns of the chain so far and how often it stopped, for tests and measurements. */
  readonly counts = { ticks: 0, stops: 0 }
  readonly #watches = new Set<Watch>()
  readonly #gaps = new RecentWaits()
  #immediate: NodeJS.Immediate | undefined
  #lastEnded = 0
  #onStop: Array<() => void> = []

  get running(): boolean {
    return this.#immediate !== undefined
  }

  get inFlight(): number {
    return Atomics.load(this.busy, 0)
  }

  /** Resolves once the chain is not running (at once if it is not), for tests. */
  whenStopped(): Promise<void> {
    return this.running ? new Promise((resolve) => this.#onStop.push(resolve)) : Promise.resolve()
  }

  hold(): void {
    Atomics.add(this.busy, 0, 1)
    this.#start()
  }

  release(): void {
    Atomics.sub(this.busy, 0, 1)
  }

  watch(watch: Watch): void {
    this.#watches.add(watch)
    if (this.running) watch.unpark()
    else watch.park()
  }

  unwatch(watch: Watch): void {
    this.#watches.delete(watch)
  }

  /**
   * Activity that is not a watch (a pool worker's message) counts as a wait that ended: the chain's
   * idle clock starts again, and the chain runs again if calls are in flight.
   */
  stir(): void {
    const now = performance.now()
    this.#gaps.add(now - this.#lastEnded)
    this.#lastEnded = now
    if (this.inFlight > 0) this.#start()
  }

  /** A parked watch's worker rang: poll it, and run the chain again if calls are in flight. */
  woken(watch: Watch): void {
    if (this.#watches.has(watch) && watch.poll()) this.#ended(watch)
    if (this.inFlight > 0) this.#start()
    else if (this.#watches.has(watch)) watch.park()
  }

  #start(): void {
    if (this.running) return
    this.#lastEnded = performance.now()
    for (const watch of this.#watches) watch.unpark()
    this.#immediate = setImmediate(this.#tick)
  }

  #ended(watch: Watch): void {
    this.#watches.delete(watch)
    const now = performance.now()
    this.#gaps.add(now - this.#lastEnded)
    this.#lastEnded = now
  }

  readonly #tick = (): void => {
    this.counts.ticks++
    for (const watch of this.#watches) if (watch.poll()) this.#ended(watch)
    const { minMs, maxMs, factor } = KEEP_AWAKE_LIMITS
    const idleLimit = Math.min(maxMs, Math.max(minMs, factor * this.#gaps.median()))
    if (this.inFlight > 0 && performance.now() - this.#lastEnded < idleLimit) {
      this.#immediate = setImmediate(this.#tick)
      return
    }
    this.#immediate = undefined
    this.counts.stops++
    for (const watch of this.#watches) watch.park()
    for (const resolve of this.#onStop.splice(0)) resolve()
  }
}

/** The one keep-awake of this thread, shared by every worker engine. */
export const keepAwake = new KeepAwake()
