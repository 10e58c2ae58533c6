// One request's stop: the caller's abort, the capsule's release and the total time limit end it, through one listener and one timer.
import { delayUntil } from '../timers.js'
import { AbortListeners, listenForAbort } from '../abort-listeners.js'
import { CapsuleHostError } from '../errors.js'
import { cancelledBy } from './host-deadline.js'

/** `timeout` (phase total) for a request past its whole time limit. */
export function totalTimeout(totalMs: number): CapsuleHostError {
  return new CapsuleHostError('timeout', `the request took longer than ${totalMs} ms`, { phase: 'total' })
}

/**
 * `work`'s value, or the signal's error (`cancelled`, or `timeout` at the deadline) as soon as it
 * aborts. `late`, when given, gets a value that arrives after that (to give back what it holds).
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal, late?: (value: T) => void): Promise<T> {
  if (signal.aborted) {
    void work.then(late, () => {})
    return Promise.reject(cancelledBy(signal))
  }
  let stopped = false
  return new Promise<T>((resolve, reject) => {
    const stopListening = listenForAbort(signal, () => {
      stopped = true
      reject(cancelledBy(signal))
    })
    work.then(
      (value) => {
        stopListening()
        if (stopped) late?.(value)
        else resolve(value)
      },
      (error: unknown) => {
        stopListening()
        reject(error)
      },
    )
  })
}

/** Where a request's control is kept while it runs: its capsule's session, which aborts them all on release. */
export interface ControlRegistry {
  add(control: RequestControl): void
  delete(control: RequestControl): void
}

/**
 * The one signal every step of a request listens to. It aborts, with the reason as a
 * CapsuleHostError, when the caller's signal aborts (one listener on it), when the capsule is
 * released (the session aborts every control it holds), or when the total deadline passes (one
 * timer). No composite signal is built: `AbortSignal.any` per request cost several µs and garbage.
 * The steps listen through `listenForAbort`, which the control calls itself: no EventTarget listener.
 */
export class RequestControl {
  readonly #controller = new AbortController()
  readonly #caller: AbortSignal | undefined
  readonly #registry: ControlRegistry
  #timer: NodeJS.Timeout | undefined
  #ended = false
  readonly #listeners = new AbortListeners(this.#controller.signal)
  readonly #onCallerAbort = () => this.abort(cancelledBy(this.#caller!))

  constructor(caller: AbortSignal | undefined, registry: ControlRegistry) {
    this.#caller = caller
    this.#registry = registry
    registry.add(this)
    if (caller?.aborted) this.abort(cancelledBy(caller))
    else caller?.addEventListener('abort', this.#onCallerAbort, { once: true })
  }

  get signal(): AbortSignal {
    return this.#controller.signal
  }

  /** Starts the total time limit: at `deadline` (performance.now() time) the request aborts with `timeout`, phase total. */
  startDeadline(deadline: number, totalMs: number): void {
    if (this.#ended || !Number.isFinite(deadline)) return
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => this.abort(totalTimeout(totalMs)), delayUntil(deadline))
  }

  /** Aborts the request (once); every step listening to `signal` stops with `reason`. */
  abort(reason: CapsuleHostError): void {
    if (this.#controller.signal.aborted) return
    this.#controller.abort(reason)
    this.#listeners.callAll()
    this.end()
  }

  /** The request is over: the timer, the caller's listener and the registration go. Idempotent. */
  end(): void {
    if (this.#ended) return
    this.#ended = true
    clearTimeout(this.#timer)
    this.#caller?.removeEventListener('abort', this.#onCallerAbort)
    this.#registry.delete(this)
  }
}
