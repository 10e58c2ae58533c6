// Abort listeners on a request's own signal without EventTarget: its control calls them directly; any other signal gets a DOM listener.

const LISTENERS = Symbol('capsule-host.abortListeners')

/** A signal a RequestControl owns carries the listeners its control calls. */
type ControlledSignal = AbortSignal & { [LISTENERS]?: AbortListeners }

/**
 * The listeners of one control's signal, called once when it aborts. A request has one or two at
 * a time (the step waiting on it), so they are a short list; removing one swaps in the last.
 */
export class AbortListeners {
  readonly #listeners: Array<() => void> = []

  /** Made for `signal` by its owner, which calls `callAll()` once it aborted the signal. */
  constructor(signal: AbortSignal) {
    ;(signal as ControlledSignal)[LISTENERS] = this
  }

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
 * request's own signal is listened to through its control (adding and removing an EventTarget
 * listener cost about 3 µs a request); any other signal through addEventListener.
 */
export function listenForAbort(signal: AbortSignal | undefined, listener: () => void): () => void {
  if (signal === undefined) return noop
  const listeners = (signal as ControlledSignal)[LISTENERS]
  if (listeners !== undefined) return listeners.add(listener)
  signal.addEventListener('abort', listener, { once: true })
  return () => signal.removeEventListener('abort', listener)
}

const noop = (): void => {}
