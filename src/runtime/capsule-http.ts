// One capsule's HTTP host service: the four host functions on bytes, and its bounded stream table.
import { CapsuleHostError, wireErrorOf, type WireError } from '../errors.js'
import type { SafeFetch, StreamedResponse } from '../safe-fetch.js'
import type { CheckedRequest } from '../wire/parse.js'

const encoder = new TextEncoder()
const utf8 = new TextDecoder('utf-8', { fatal: true })

/** Handles are positive decimal integers, written without leading zeros. */
const HANDLE = /^[1-9][0-9]{0,15}$/

interface OpenStream {
  readonly response: StreamedResponse
}

/** A request as the capsule sent it (inline isolation), or as its worker checked it. */
export type RequestInput = Uint8Array | CheckedRequest

/** The result of a read: bytes (empty at the end of the stream) or the error that failed it. */
export type ReadResult = { ok: true; bytes: Uint8Array } | { ok: false; error: WireError }

function json(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value))
}

export interface CapsuleHttpOptions {
  readonly fetch: SafeFetch
  readonly capsuleId: string
  readonly maxOpenStreams: number
}

/**
 * Serves the host functions for one capsule. Handles are never reused; at most `maxOpenStreams`
 * are open (a start that would exceed it answers `stream_limit` without any network I/O);
 * `closeAll()` aborts everything the capsule has in flight.
 */
export class CapsuleHttp {
  readonly #options: CapsuleHttpOptions
  readonly #streams = new Map<string, OpenStream>()
  readonly #abort = new AbortController()
  /** Slots taken by open streams and by starts still waiting for their response head. */
  #slots = 0
  #nextHandle = 1

  constructor(options: CapsuleHttpOptions) {
    this.#options = options
  }

  get openStreams(): number {
    return this.#streams.size
  }

  #context() {
    return { capsuleId: this.#options.capsuleId, signal: this.#abort.signal }
  }

  /** `http_request`: request JSON bytes in, reply JSON bytes out. Never throws. */
  async request(input: RequestInput): Promise<Uint8Array> {
    try {
      return json(await this.#options.fetch.request(input, this.#context()))
    } catch (error) {
      return json({ error: wireErrorOf(error) })
    }
  }

  /** `http_stream_start`: request JSON bytes in, `{ handle, status, headers, rawHeaders }` or `{ error }` out. */
  async streamStart(input: RequestInput): Promise<Uint8Array> {
    if (this.#slots >= this.#options.maxOpenStreams) {
      const message = `this capsule already has ${this.#options.maxOpenStreams} open streams; close one first`
      this.#options.fetch.recordRefusal(input, this.#context(), { code: 'stream_limit', reason: message, decidedBy: 'stream-table' })
      return json({ error: { code: 'stream_limit', message } })
    }
    this.#slots++
    const handle = String(this.#nextHandle++)
    let reply: Awaited<ReturnType<SafeFetch['stream']>>
    try {
      reply = await this.#options.fetch.stream(input, this.#context())
    } catch (error) {
      reply = { error: wireErrorOf(error) }
    }
    if ('error' in reply) {
      this.#slots--
      return json(reply)
    }
    if (this.#abort.signal.aborted) {
      reply.close()
      this.#slots--
      return json({ error: { code: 'cancelled', message: 'the capsule was unloaded' } })
    }
    this.#streams.set(handle, { response: reply })
    return json({ handle, status: reply.status, headers: reply.headers, rawHeaders: reply.rawHeaders })
  }

  /** Records, for the audit log, a request the capsule's worker refused in validation (it never reached here). */
  recordInvalid(notice: { kind: 'request' | 'stream'; error: WireError }): void {
    const { code, message } = notice.error
    this.#options.fetch.recordRefusal(undefined, this.#context(), { code, reason: message, decidedBy: 'validation', kind: notice.kind })
  }

  #lookup(handle: Uint8Array | string): [string, OpenStream] {
    let text: string
    try {
      text = typeof handle === 'string' ? handle : utf8.decode(handle)
    } catch {
      throw new CapsuleHostError('invalid_request', 'the stream handle is not valid UTF-8')
    }
    const stream = HANDLE.test(text) ? this.#streams.get(text) : undefined
    if (!stream) {
      throw new CapsuleHostError('invalid_request', `${JSON.stringify(text.slice(0, 32))} is not an open stream handle of this capsule`)
    }
    return [text, stream]
  }

  /**
   * `http_stream_read`: what has arrived, at most `capacity` bytes (the rest is kept for the next
   * read); empty at the end of the stream. An error (unknown handle, timeout, reset, cap) frees the handle.
   */
  async streamRead(handle: Uint8Array | string, capacity = Number.POSITIVE_INFINITY): Promise<ReadResult> {
    let key: string | undefined
    try {
      const [found, stream] = this.#lookup(handle)
      key = found
      return { ok: true, bytes: (await stream.response.read(capacity)) ?? new Uint8Array(0) }
    } catch (error) {
      if (key !== undefined) this.streamClose(key)
      return { ok: false, error: wireErrorOf(error) }
    }
  }

  /** `http_stream_close`: idempotent; an unknown handle is a no-op. */
  streamClose(handle: Uint8Array | string): void {
    let key: string
    try {
      key = this.#lookup(handle)[0]
    } catch {
      return
    }
    this.#streams.get(key)?.response.close()
    this.#streams.delete(key)
    this.#slots--
  }

  /** Aborts every request and stream in flight and frees every handle. */
  closeAll(): void {
    this.#abort.abort()
    for (const stream of this.#streams.values()) stream.response.close()
    this.#slots -= this.#streams.size
    this.#streams.clear()
  }
}
