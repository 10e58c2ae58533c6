// What a request's steps watch for an abort: an AbortSignal, or the request's own control, which calls its listeners itself (no EventTarget).

/** A stop that is not an EventTarget: a request's control, which calls its listeners once it aborts. */
export interface Stoppable {
  readonly aborted: boolean
  /** Why it stopped (a CapsuleHostError for a request's control); undefined until then. */
  readonly reason: unknown
  /** Calls `listener` once when it stops; returns what stops listening (idempotent). */
  onAbort(listener: () => void): () => void
}

/** What the steps of a request are stopped by: a caller's AbortSignal, or the request's own control. */
export type StopSignal = AbortSignal | Stoppable

/**
 * The listeners of one control, called once when it aborts. A request has one or two at a time
 * (the step waiting on it), so they are a short list; removing one swaps in the last.
 */
export class AbortListeners {
  readonly #listeners: Array<() => void> = []

  add(listener: () => void): () => void {
    this.#listeners.push(listener)
    return () => this.#remove(listener)
  }

  /** Calls each listener once (in the order they were added) and forgets them. */
  callAll(): void {
    const listeners = this.#listeners.splice(0)
    for (const listener of listeners) listener()
  }

  #remove(listener: () => void): void {
    const list = this.#listeners
    const at = list.indexOf(listener)
    if (at === -1) return
    list[at] = list[list.length - 1]!
    list.pop()
  }
}

/**
 * Calls `listener` once when `signal` aborts; returns what stops listening (idempotent). A
 * request's control is listened to directly (adding and removing an EventTarget listener cost
 * about 3 µs a request); an AbortSignal through addEventListener.
 */
export function listenForAbort(signal: StopSignal | undefined, listener: () => void): () => void {
  if (signal === undefined) return noop
  // By its method, not `instanceof EventTarget`: an AbortSignal of another realm is still an AbortSignal.
  if (typeof (signal as Partial<Stoppable>).onAbort === 'function') return (signal as Stoppable).onAbort(listener)
  const target = signal as AbortSignal
  target.addEventListener('abort', listener, { once: true })
  return () => target.removeEventListener('abort', listener)
}

const noop = (): void => {}
