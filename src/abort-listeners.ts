// Abort listeners on a request's own signal without EventTarget: its control calls them directly; any other signal gets a DOM listener.

/** The listeners a request's control keeps for its signal, by the signal (set by the control). */
const controlled = new WeakMap<AbortSignal, Set<() => void>>()

/**
 * Makes `signal`'s aborts call its listeners from `listeners` (the control calls them once it
 * aborted the signal). For the signal of a RequestControl only.
 */
export function controlListeners(signal: AbortSignal, listeners: Set<() => void>): void {
  controlled.set(signal, listeners)
}

/**
 * Calls `listener` once when `signal` aborts; returns what stops listening (idempotent). A
 * request's own signal is listened to through its control (adding and removing an EventTarget
 * listener cost about 3 µs a request); any other signal through addEventListener.
 */
export function listenForAbort(signal: AbortSignal | undefined, listener: () => void): () => void {
  if (signal === undefined) return noop
  const listeners = controlled.get(signal)
  if (listeners !== undefined) {
    listeners.add(listener)
    return () => listeners.delete(listener)
  }
  signal.addEventListener('abort', listener, { once: true })
  return () => signal.removeEventListener('abort', listener)
}

const noop = (): void => {}
