// Sends one HTTP exchange to a checked address: assembles the transport pieces in src/net/transport/.
import type { Dispatcher } from 'undici'
import { listenForAbort, type StopSignal } from '../abort-listeners.js'
import { cancelledBy } from '../errors.js'
import { transportError } from './transport/errors.js'
import { HopHandler } from './transport/hop-handler.js'
import { pinnedDispatchOptions } from './transport/pin.js'
import type { Hop, HopLimits, ResponseHead } from './transport/types.js'

export { readAll, readBodyInto, wholeBody } from './transport/body-reader.js'
export type { BodyReader, Hop, HopLimits, ResponseHead } from './transport/types.js'

/**
 * Dispatches `hop` on `dispatcher`, connecting only to `hop.address`; the Host header and the TLS
 * servername keep the name. Resolves with the final response head once it arrives (interim 1xx
 * responses are skipped); the body is read through the returned reader under the idle timeout
 * and the byte cap. The total deadline is the signal's: the request's control aborts it.
 */
export function dispatchHop(
  dispatcher: Dispatcher,
  hop: Hop,
  limits: HopLimits,
  signal: StopSignal | undefined,
): Promise<ResponseHead> {
  return new Promise<ResponseHead>((resolve, reject) => {
    if (signal?.aborted) return reject(cancelledBy(signal))
    let stopListening = (): void => {}
    const handler = new HopHandler(hop, limits, { resolve, reject, settled: () => stopListening() })
    // The request's control aborts with the reason: the caller's cancel, the release, or its total deadline.
    stopListening = listenForAbort(signal, () => handler.fail(cancelledBy(signal!)))
    handler.timers.start('connect', limits.connectTimeoutMs, limits.connectDeadline - performance.now())
    try {
      dispatcher.dispatch(pinnedDispatchOptions(hop), handler)
    } catch (error) {
      handler.fail(transportError(error, false, hop.shown ?? hop.url))
    }
  })
}
