// undici handler (current API) for one hop: skips 1xx, then wires the limits, timers and body reader together.
import type { IncomingHttpHeaders } from 'node:http'
import type { Dispatcher } from 'undici'
import type { CapsuleHostError } from '../../errors.js'
import { rawHeaderPairs, type HeaderList } from '../headers.js'
import { PullBodyReader } from './body-reader.js'
import { transportError } from './errors.js'
import { countedTooLarge, declaredTooLarge } from './limits.js'
import { PhaseTimers } from './timeouts.js'
import type { Hop, HopLimits, ResponseHead } from './types.js'

/** Where the head goes, and what to release once the exchange is over (ended or failed). */
export interface HeadSink {
  resolve(head: ResponseHead): void
  reject(error: CapsuleHostError): void
  settled(): void
}

/** The final head's headers in wire order with repeats (raw when undici gives them, else from the object). */
function responseHeaders(controller: Dispatcher.DispatchController, headers: IncomingHttpHeaders): HeaderList {
  if (Array.isArray(controller.rawHeaders)) return rawHeaderPairs(controller.rawHeaders)
  const pairs: HeaderList = []
  for (const [name, value] of Object.entries(controller.rawHeaders ?? headers)) {
    for (const one of Array.isArray(value) ? value : [value ?? '']) pairs.push([name.toLowerCase(), String(one)])
  }
  return pairs
}

/** The content-length of a final response that has a body (not HEAD, 204 or 304), when it is one number. */
function declaredLength(method: string, status: number, headers: HeaderList): number | undefined {
  if (method === 'HEAD' || status === 204 || status === 304) return undefined
  const declared = headers.find(([name]) => name === 'content-length')?.[1]
  return declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : undefined
}

/** True when the body comes in chunked transfer coding (it ends with its last chunk, not a close). */
function isChunked(headers: HeaderList): boolean {
  return headers.some(([name, value]) => name === 'transfer-encoding' && /(?:^|,)\s*chunked\s*$/i.test(value))
}

export class HopHandler implements Dispatcher.DispatchHandler {
  readonly #hop: Hop
  readonly #limits: HopLimits
  readonly #sink: HeadSink
  readonly timers: PhaseTimers
  readonly #body: PullBodyReader
  #controller: Dispatcher.DispatchController | undefined
  #connected = false
  #headSent = false
  #ended = false
  #failure: CapsuleHostError | undefined
  /** The body's declared length (content-length of a response with a body), when there is one. */
  #declaredLength: number | undefined
  /**
   * False for a body that ends only when the server closes (no length, not chunked): it is never
   * paused, as undici 7 fails an assertion, and takes the process down, when such a connection
   * closes while paused (nodejs/undici#5360). The body cap still bounds what it queues.
   */
  #pausable = true

  constructor(hop: Hop, limits: HopLimits, sink: HeadSink) {
    this.#hop = hop
    this.#limits = limits
    this.#sink = sink
    this.timers = new PhaseTimers(hop.shown ?? hop.url, (error) => this.fail(error))
    this.#body = new PullBodyReader({
      waiting: () => this.timers.start('idle', limits.idleTimeoutMs),
      delivered: () => this.timers.stopPhase(),
      resume: () => this.#controller?.resume(),
      cancel: (error) => this.fail(error),
    })
  }

  /** Ends the exchange with `error` (once; never after the end): aborts upstream, rejects head or reads. */
  fail(error: CapsuleHostError): void {
    if (this.#failure || this.#ended) return
    this.#failure = error
    this.timers.stop()
    this.#sink.settled()
    // Before onRequestStart there is nothing to abort yet; onRequestStart aborts at once.
    this.#controller?.abort(error)
    if (!this.#headSent) this.#sink.reject(error)
    this.#body.fail(error)
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    if (this.#failure) return controller.abort(this.#failure)
    this.#connected = true
    this.timers.start('first_byte', this.#limits.firstByteTimeoutMs)
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (this.#failure) return
    // An interim response (1xx: 102, 103, ...) is not the answer: nobody sees it, and the first_byte
    // timer keeps running, unrestarted, until the final head.
    if (statusCode < 200) return
    this.timers.stopPhase()
    const rawHeaders = responseHeaders(controller, headers)
    const tooLarge = declaredTooLarge(this.#hop.method, statusCode, rawHeaders, this.#limits.maxBodyBytes)
    if (tooLarge) return this.fail(tooLarge)
    this.#declaredLength = declaredLength(this.#hop.method, statusCode, rawHeaders)
    this.#pausable = this.#declaredLength !== undefined || isChunked(rawHeaders)
    this.#headSent = true
    this.#sink.resolve({ status: statusCode, rawHeaders, body: this.#body })
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    // An empty chunk would read as the end of the stream on the wire; there is nothing to pass on.
    if (this.#failure || chunk.byteLength === 0) return
    const received = this.#body.received(chunk.byteLength)
    const tooLarge = countedTooLarge(received, this.#limits.maxBodyBytes)
    if (tooLarge) return this.fail(tooLarge)
    // The last bytes of a declared body are never paused on: the socket holds nothing more of it,
    // and a pause would hold back its end, so a server closing the idle connection in the
    // meantime (its keep-alive timeout) would fail a body that had fully arrived.
    if (!this.#body.push(chunk) && this.#pausable && received !== this.#declaredLength) controller.pause()
  }

  onResponseEnd(): void {
    if (this.#failure) return
    this.#ended = true
    this.timers.stop()
    this.#sink.settled()
    this.#body.end()
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    this.fail(transportError(error, this.#connected, this.#hop.shown ?? this.#hop.url))
  }
}
