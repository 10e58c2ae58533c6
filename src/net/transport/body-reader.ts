// The pull body reader: queues received chunks, hands them out on read(), and pauses the socket when full.
import { CapsuleHostError } from '../../errors.js'
import type { BodyReader } from './types.js'

/** Pause the socket when this much is buffered and nobody is reading. */
export const HIGH_WATER_BYTES = 1024 * 1024

/** What the reader asks of the exchange feeding it. */
export interface BodySource {
  /** A read has to wait for the network (the idle phase starts). */
  waiting(): void
  /** A chunk reached a waiting read (the idle phase ends). */
  delivered(): void
  /** The buffer drained below the high-water mark after a pause. */
  resume(): void
  /** The reader gave up before the end. */
  cancel(error: CapsuleHostError): void
}

type Waiter = { resolve: (chunk: Uint8Array | null) => void; reject: (e: Error) => void }

export class PullBodyReader implements BodyReader {
  readonly #source: BodySource
  readonly #queue: Uint8Array[] = []
  #buffered = 0
  #bytesRead = 0
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

  /** Takes a received chunk; false when the upstream should pause until `resume()`. */
  push(chunk: Uint8Array): boolean {
    const waiter = this.#waiter
    if (waiter) {
      this.#waiter = undefined
      this.#source.delivered()
      waiter.resolve(chunk)
      return true
    }
    this.#queue.push(chunk)
    this.#buffered += chunk.byteLength
    this.#paused = this.#buffered >= HIGH_WATER_BYTES
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
    this.#waiter?.reject(error)
    this.#waiter = undefined
  }

  read(maxBytes = Number.POSITIVE_INFINITY): Promise<Uint8Array | null> {
    if (this.#failure) return Promise.reject(this.#failure)
    // One read at a time: a second would replace the first's waiter and leave it pending for ever.
    if (this.#waiter) return Promise.reject(new TypeError('a read of this body is already pending; wait for it before reading again'))
    if (this.#queue.length > 0) {
      const taken = this.#take(maxBytes)
      if (this.#paused && this.#buffered < HIGH_WATER_BYTES) {
        this.#paused = false
        this.#source.resume()
      }
      return Promise.resolve(taken)
    }
    if (this.#ended) return Promise.resolve(null)
    return new Promise<Uint8Array | null>((resolve, reject) => {
      this.#waiter = { resolve, reject }
      this.#source.waiting()
    }).then((chunk) => {
      if (chunk === null || chunk.byteLength <= maxBytes) return chunk
      this.#queue.unshift(chunk.subarray(maxBytes))
      this.#buffered += chunk.byteLength - maxBytes
      return chunk.subarray(0, maxBytes)
    })
  }

  cancel(): void {
    if (this.#ended || this.#failure) return
    this.#source.cancel(new CapsuleHostError('cancelled', 'the response body was not read to the end'))
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

/** Reads a body to its end into one buffer (the caller's cap was applied while it streamed in). */
export async function readAll(body: BodyReader): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  for (let chunk = await body.read(); chunk !== null; chunk = await body.read()) chunks.push(chunk)
  return Buffer.concat(chunks)
}
