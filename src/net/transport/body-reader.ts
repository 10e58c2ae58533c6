// The pull body reader: queues received chunks up to about one read's worth, hands them out on read(), and pauses the socket past that.
import { channel } from 'node:diagnostics_channel'
import { CapsuleHostError } from '../../errors.js'
import type { BodyReader } from './types.js'

/**
 * What the reader queues ahead for a read that names no size, and before the first read: two
 * chunks as undici delivers them (a socket read is 64 KiB), the one a read takes and the next,
 * so the next is there when a read returns (what the secret scrubber looks at to hand out a
 * chunk whole; with one, its scanned streams ran ~25% slower).
 */
export const DEFAULT_READ_AHEAD_BYTES = 128 * 1024

/**
 * The most a read's size can make the reader queue ahead: the guest SDK's read buffer. A reader
 * asking for more still gets everything queued, up to its size; it cannot make an unread stream
 * hold more.
 */
export const MAX_READ_AHEAD_BYTES = 256 * 1024

/** The read-ahead a read of `maxBytes` sets for the next one. */
export const readAheadFor = (maxBytes: number): number =>
  Number.isFinite(maxBytes) ? Math.min(maxBytes, MAX_READ_AHEAD_BYTES) : DEFAULT_READ_AHEAD_BYTES

/** What a reader publishes on `pausedChannel` when it asks its exchange to pause. */
export interface PausedMessage {
  readonly reader: PullBodyReader
  /** Bytes queued at the pause: at most the read-ahead plus the chunk that reached it. */
  readonly buffered: number
  readonly readAhead: number
}

/**
 * Diagnostics (node:diagnostics_channel) `capsule-host:body-reader:paused`: a PausedMessage each
 * time a reader asks its exchange to pause. Tests wait on it; without subscribers it costs a check.
 */
export const pausedChannel = channel('capsule-host:body-reader:paused')

/** What the reader asks of the exchange feeding it. */
export interface BodySource {
  /** A read has to wait for the network (the idle phase starts). */
  waiting(): void
  /** A chunk reached a waiting read (the idle phase ends). */
  delivered(): void
  /** A read took the queue below the read-ahead after a pause: deliver again. */
  resume(): void
  /** The reader gave up before the end. */
  cancel(error: CapsuleHostError): void
}

/** A read waiting for the network: it takes what is queued when it is handed over, or learns of the end or a failure. */
interface Waiter {
  readonly maxBytes: number
  /** Settles the read with what it takes from the queue (not empty). */
  readonly take: () => void
  readonly end: () => void
  readonly reject: (error: Error) => void
}

/**
 * Queues what the exchange delivers until the read-ahead is queued (the last read's size, at most
 * MAX_READ_AHEAD_BYTES; DEFAULT_READ_AHEAD_BYTES before the first read and for a read of no size),
 * then asks it to pause; a read that takes the queue below that resumes it. The exchange stops
 * after the chunk in hand, so no chunk arrives while the queue is at the read-ahead: it holds at
 * most the read-ahead plus one chunk (a smaller read after a larger one leaves what is queued).
 */
export class PullBodyReader implements BodyReader {
  readonly #source: BodySource
  readonly #queue: Uint8Array[] = []
  #buffered = 0
  #bytesRead = 0
  #readAhead = DEFAULT_READ_AHEAD_BYTES
  #paused = false
  #ended = false
  #failure: CapsuleHostError | undefined
  #waiter: Waiter | undefined
  /** The waiting read's hand-over at the end of this turn of the event loop, once a chunk is queued for it. */
  #handOver: NodeJS.Immediate | undefined

  constructor(source: BodySource) {
    this.#source = source
  }

  get bytesRead(): number {
    return this.#bytesRead
  }

  get buffered(): number {
    return this.#buffered
  }

  /** Counts bytes received (before the cap is checked); returns the new total. */
  received(bytes: number): number {
    return (this.#bytesRead += bytes)
  }

  /**
   * Queues a received chunk. A waiting read of no size gets it now; a sized read gets what is
   * queued once that fills it, or else when this turn of the event loop has delivered what the
   * socket had ready (setImmediate), so one read takes several chunks instead of waking once for
   * each. False when the read-ahead is queued: the exchange should pause until `resume()`.
   */
  push(chunk: Uint8Array): boolean {
    this.#enqueue(chunk)
    const waiter = this.#waiter
    if (waiter !== undefined) {
      if (this.#handOver === undefined) this.#source.delivered()
      if (!Number.isFinite(waiter.maxBytes) || this.#buffered >= waiter.maxBytes) this.#handToWaiter()
      else this.#handOver ??= setImmediate(this.#handOverLater)
    }
    this.#paused = this.#buffered >= this.#readAhead
    if (this.#paused && pausedChannel.hasSubscribers) {
      pausedChannel.publish({ reader: this, buffered: this.#buffered, readAhead: this.#readAhead } satisfies PausedMessage)
    }
    return !this.#paused
  }

  /** The body ended normally: a waiting read gets what is queued, or the end. */
  end(): void {
    this.#ended = true
    if (this.#queue.length > 0) this.#handToWaiter()
    const waiter = this.#waiter
    this.#waiter = undefined
    waiter?.end()
  }

  /** The exchange failed: drops what is queued; every read from now on rejects with `error`. */
  fail(error: CapsuleHostError): void {
    if (this.#failure || this.#ended) return
    this.#failure = error
    this.#queue.length = 0
    this.#buffered = 0
    this.#cancelHandOver()
    const waiter = this.#waiter
    this.#waiter = undefined
    waiter?.reject(error)
  }

  read(maxBytes = Number.POSITIVE_INFINITY): Promise<Uint8Array | null> {
    const refused = this.#refusal(maxBytes)
    if (refused) return refused
    if (this.#queue.length > 0) return this.#taken(this.#take(maxBytes))
    if (this.#ended) return Promise.resolve(null)
    return this.#wait<Uint8Array | null>(maxBytes, () => this.#take(maxBytes), null)
  }

  /**
   * Like `read(target.byteLength)`, with what is queued copied straight into `target` (a
   * capsule's own memory): no buffer in between. The byte count; 0 at the end.
   */
  readInto(target: Uint8Array): Promise<number> {
    const refused = this.#refusal(target.byteLength)
    if (refused) return refused
    if (this.#queue.length > 0) return this.#taken(this.#takeInto(target))
    if (this.#ended) return Promise.resolve(0)
    return this.#wait(target.byteLength, () => this.#takeInto(target), 0)
  }

  /** Why a read cannot start, as the rejected read; undefined when it can (it sets the read-ahead). */
  #refusal(maxBytes: number): Promise<never> | undefined {
    // A read of nothing would return an empty chunk, which reads as the end: refused, as the scrubber refuses it.
    if (!(maxBytes >= 1)) return Promise.reject(new RangeError(`maxBytes must be at least 1, not ${maxBytes}`))
    if (this.#failure) return Promise.reject(this.#failure)
    // One read at a time: a second would replace the first's waiter and leave it pending for ever.
    if (this.#waiter) return Promise.reject(new TypeError('a read of this body is already pending; wait for it before reading again'))
    this.#readAhead = readAheadFor(maxBytes)
    return undefined
  }

  /** What a read took from the queue; resuming may deliver the next chunks at once (re-entering push), after it was taken. */
  #taken<T>(value: T): Promise<T> {
    this.#resumeBelowReadAhead()
    return Promise.resolve(value)
  }

  /** Waits for the network: settles with `take()` once chunks are handed over, or `atEnd`. */
  #wait<T>(maxBytes: number, take: () => T, atEnd: T): Promise<T> {
    const next = new Promise<T>((resolve, reject) => {
      this.#waiter = { maxBytes, take: () => resolve(take()), end: () => resolve(atEnd), reject }
    })
    this.#source.waiting()
    this.#resumeBelowReadAhead()
    return next
  }

  /** The waiting read takes what is queued now (inside push: push's answer tells the exchange to go on). */
  #handToWaiter(): void {
    this.#cancelHandOver()
    const waiter = this.#waiter
    this.#waiter = undefined
    waiter?.take()
  }

  readonly #handOverLater = (): void => {
    this.#handOver = undefined
    if (this.#waiter === undefined || this.#queue.length === 0) return
    this.#handToWaiter()
    this.#resumeBelowReadAhead()
  }

  #cancelHandOver(): void {
    if (this.#handOver === undefined) return
    clearImmediate(this.#handOver)
    this.#handOver = undefined
  }

  /** The whole body in one piece when it has ended and is all queued (nothing read yet or since); else undefined. */
  whole(): Uint8Array | undefined {
    if (!this.#ended || this.#failure || this.#waiter) return undefined
    const queue = this.#queue
    const whole = queue.length === 1 ? queue[0]! : Buffer.concat(queue, this.#buffered)
    queue.length = 0
    this.#buffered = 0
    return whole
  }

  cancel(): void {
    if (this.#ended || this.#failure) return
    this.#source.cancel(new CapsuleHostError('cancelled', 'the response body was not read to the end'))
  }

  #enqueue(chunk: Uint8Array): void {
    this.#queue.push(chunk)
    this.#buffered += chunk.byteLength
  }

  #resumeBelowReadAhead(): void {
    if (!this.#paused || this.#buffered >= this.#readAhead) return
    this.#paused = false
    this.#source.resume()
  }

  /** Takes one queued chunk, or (with a finite limit) as many as fit in `maxBytes`, splitting the last. */
  #take(maxBytes: number): Uint8Array {
    const queue = this.#queue
    const first = queue[0]!
    if (Number.isFinite(maxBytes) && queue.length > 1 && first.byteLength < maxBytes) {
      const joined = Buffer.allocUnsafe(Math.min(maxBytes, this.#buffered))
      this.#takeInto(joined)
      return joined
    }
    const taken = first.byteLength > maxBytes ? first.subarray(0, maxBytes) : first
    if (taken === first) queue.shift()
    else queue[0] = first.subarray(maxBytes)
    this.#buffered -= taken.byteLength
    return taken
  }

  /** Copies queued chunks into `target` until it is full or the queue is empty, splitting the last; the byte count. */
  #takeInto(target: Uint8Array): number {
    const queue = this.#queue
    let size = 0
    while (size < target.byteLength && queue.length > 0) {
      const chunk = queue[0]!
      const part = chunk.byteLength <= target.byteLength - size ? chunk : chunk.subarray(0, target.byteLength - size)
      if (part === chunk) queue.shift()
      else queue[0] = chunk.subarray(part.byteLength)
      target.set(part, size)
      size += part.byteLength
    }
    this.#buffered -= size
    return size
  }
}

/** A body's bytes at once when it has ended and all of it is queued in a pull reader; else undefined (read it). */
export function wholeBody(body: BodyReader): Uint8Array | undefined {
  return body instanceof PullBodyReader ? body.whole() : undefined
}

/**
 * Reads the next piece of a body into `target`, as `read(target.byteLength)` would hand it out:
 * a pull reader copies what it has queued straight in; any other reader's piece is copied. The
 * byte count; 0 at the end.
 */
export function readBodyInto(body: BodyReader, target: Uint8Array): Promise<number> {
  if (body instanceof PullBodyReader) return body.readInto(target)
  return body.read(target.byteLength).then((chunk) => {
    if (chunk === null) return 0
    target.set(chunk)
    return chunk.byteLength
  })
}

/** Reads a body to its end into one buffer (the caller's cap was applied while it streamed in). */
export async function readAll(body: BodyReader): Promise<Uint8Array> {
  const whole = wholeBody(body)
  if (whole !== undefined) return whole
  const chunks: Uint8Array[] = []
  for (let chunk = await body.read(); chunk !== null; chunk = await body.read()) chunks.push(chunk)
  return Buffer.concat(chunks)
}
