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

type Waiter = { maxBytes: number; resolve: (chunk: Uint8Array | null) => void; reject: (e: Error) => void }

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
   * Takes a received chunk: to the waiting read (split at its size, the rest queued) or into the
   * queue. False when the read-ahead is queued: the exchange should pause until `resume()`.
   */
  push(chunk: Uint8Array): boolean {
    const waiter = this.#waiter
    if (waiter === undefined) {
      this.#enqueue(chunk)
    } else {
      this.#waiter = undefined
      this.#source.delivered()
      if (chunk.byteLength > waiter.maxBytes) this.#enqueue(chunk.subarray(waiter.maxBytes))
      waiter.resolve(chunk.byteLength > waiter.maxBytes ? chunk.subarray(0, waiter.maxBytes) : chunk)
    }
    this.#paused = this.#buffered >= this.#readAhead
    if (this.#paused && pausedChannel.hasSubscribers) {
      pausedChannel.publish({ reader: this, buffered: this.#buffered, readAhead: this.#readAhead } satisfies PausedMessage)
    }
    return !this.#paused
  }

  /** The body ended normally. */
  end(): void {
    this.#ended = true
    this.#waiter?.resolve(null)
    this.#waiter = undefined
  }

  /** The exchange failed: drops what is queued; every read from now on rejects with `error`. */
  fail(error: CapsuleHostError): void {
    if (this.#failure || this.#ended) return
    this.#failure = error
    this.#queue.length = 0
    this.#buffered = 0
    this.#waiter?.reject(error)
    this.#waiter = undefined
  }

  read(maxBytes = Number.POSITIVE_INFINITY): Promise<Uint8Array | null> {
    // A read of nothing would return an empty chunk, which reads as the end: refused, as the scrubber refuses it.
    if (!(maxBytes >= 1)) return Promise.reject(new RangeError(`maxBytes must be at least 1, not ${maxBytes}`))
    if (this.#failure) return Promise.reject(this.#failure)
    // One read at a time: a second would replace the first's waiter and leave it pending for ever.
    if (this.#waiter) return Promise.reject(new TypeError('a read of this body is already pending; wait for it before reading again'))
    this.#readAhead = readAheadFor(maxBytes)
    if (this.#queue.length > 0) {
      const taken = this.#take(maxBytes)
      // Resuming may deliver the next chunks at once (re-entering push), after this one was taken.
      this.#resumeBelowReadAhead()
      return Promise.resolve(taken)
    }
    if (this.#ended) return Promise.resolve(null)
    const next = new Promise<Uint8Array | null>((resolve, reject) => {
      this.#waiter = { maxBytes, resolve, reject }
    })
    this.#source.waiting()
    this.#resumeBelowReadAhead()
    return next
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
    const parts: Uint8Array[] = []
    let size = 0
    do {
      const chunk = queue[0]!
      const room = Number.isFinite(maxBytes) ? maxBytes - size : chunk.byteLength
      if (chunk.byteLength <= room) {
        parts.push(chunk)
        queue.shift()
      } else {
        parts.push(chunk.subarray(0, room))
        queue[0] = chunk.subarray(room)
      }
      size += parts[parts.length - 1]!.byteLength
    } while (Number.isFinite(maxBytes) && size < maxBytes && queue.length > 0)
    this.#buffered -= size
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, size)
  }
}

/** A body's bytes at once when it has ended and all of it is queued in a pull reader; else undefined (read it). */
export function wholeBody(body: BodyReader): Uint8Array | undefined {
  return body instanceof PullBodyReader ? body.whole() : undefined
}

/** Reads a body to its end into one buffer (the caller's cap was applied while it streamed in). */
export async function readAll(body: BodyReader): Promise<Uint8Array> {
  const whole = wholeBody(body)
  if (whole !== undefined) return whole
  const chunks: Uint8Array[] = []
  for (let chunk = await body.read(); chunk !== null; chunk = await body.read()) chunks.push(chunk)
  return Buffer.concat(chunks)
}
