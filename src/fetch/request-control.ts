// One request's stop: the caller's abort, the capsule's release and the total time limit end it, through one listener and one timer.
import { delayUntil } from '../timers.js'
import { AbortListeners, listenForAbort, type StopSignal, type Stoppable } from '../abort-listeners.js'
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
export function untilAborted<T>(work: Promise<T>, signal: StopSignal, late?: (value: T) => void): Promise<T> {
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
 * The one stop every step of a request watches. It aborts, with the reason as a CapsuleHostError,
 * when the caller's signal aborts (one listener on it), when the capsule is released (the session
 * aborts every control it holds), or when the total deadline passes (one timer). No composite
 * signal is built (`AbortSignal.any` per request cost several µs and garbage), and no AbortSignal
 * at all unless someone asks for `signal` (a quota store does): the steps listen through
 * `listenForAbort`, which the control answers itself.
 */
export class RequestControl implements Stoppable {
  #controller: AbortController | undefined
  readonly #caller: AbortSignal | undefined
  readonly #registry: ControlRegistry
  #timer: NodeJS.Timeout | undefined
  #ended = false
  #reason: CapsuleHostError | undefined
  readonly #listeners = new AbortListeners()
  readonly #onCallerAbort = () => this.abort(cancelledBy(this.#caller!))

  constructor(caller: AbortSignal | undefined, registry: ControlRegistry) {
    this.#caller = caller
    this.#registry = registry
    registry.add(this)
    if (caller?.aborted) this.abort(cancelledBy(caller))
    else caller?.addEventListener('abort', this.#onCallerAbort, { once: true })
  }

  get aborted(): boolean {
    return this.#reason !== undefined
  }

  /** Why the request stopped; undefined while it runs. */
  get reason(): CapsuleHostError | undefined {
    return this.#reason
  }

  onAbort(listener: () => void): () => void {
    return this.#listeners.add(listener)
  }

  /** An AbortSignal that aborts with the control (made on first use, for callers that need one). */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController()
      if (this.#reason) this.#controller.abort(this.#reason)
    }
    return this.#controller.signal
  }

  /** Starts the total time limit: at `deadline` (performance.now() time) the request aborts with `timeout`, phase total. */
  startDeadline(deadline: number, totalMs: number): void {
    if (this.#ended || !Number.isFinite(deadline)) return
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => this.abort(totalTimeout(totalMs)), delayUntil(deadline))
  }

  /** Aborts the request (once); every step listening to it stops with `reason`. */
  abort(reason: CapsuleHostError): void {
    if (this.#reason) return
    this.#reason = reason
    this.#controller?.abort(reason)
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
