// One capsule's HTTP host service: the four host functions on bytes, over its safe-fetch session.
import { ABIS, type Abi } from '../audit.js'
import { CapsuleHostError, wireErrorOf, type WireError } from '../errors.js'
import { headerForms } from '../fetch/reply.js'
import type { RequestVia, SafeFetchSession, StreamedResponse } from '../safe-fetch.js'
import type { Telemetry } from '../telemetry/index.js'
import { utf8Bytes } from '../utf8-bytes.js'
import type { CheckedRequest } from '../wire/parse.js'
import type { CallInProgress, CallTracker } from './capsule.js'
import { extismHeaders, type KernelReply } from './kernel-http.js'

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** Handles are positive decimal integers, written without leading zeros. */
const HANDLE = /^[1-9][0-9]{0,15}$/

/** A request as the capsule sent it (inline isolation), or as its worker checked it. */
export type RequestInput = Uint8Array | CheckedRequest

/** The result of a read: bytes (empty at the end of the stream) or the error that failed it. */
export type ReadResult = { ok: true; bytes: Uint8Array } | { ok: false; error: WireError }

/** The result of a read into the capsule's memory: the byte count (0 at the end of the stream) or the error that failed it. */
export type ReadIntoResult = { ok: true; count: number } | { ok: false; error: WireError }

function json(value: unknown): Uint8Array {
  return utf8Bytes(JSON.stringify(value))
}

/** How Extism's kernel `http_request` reaches the safe fetch. */
const KERNEL_VIA: RequestVia = { abi: 'extism', followRedirects: true }

/** A call that nothing watches. */
const UNWATCHED: CallInProgress = { end: () => undefined }

/**
 * Serves the host functions for one capsule on its session: the session's stream table holds the
 * handles (never reused, at most `limits.maxOpenStreams`); `closeAll()` releases the session, which
 * aborts everything the capsule has in flight. With telemetry, each call is a span and the
 * requests it makes are its children (`RequestVia.parent`): calls of one capsule run one at a
 * time (Capsule.call queues them), so the call in progress is the one making every request.
 */
export class CapsuleHttp implements CallTracker {
  readonly #session: SafeFetchSession
  readonly #telemetry: Telemetry | undefined
  /** The telemetry context of the call in progress, which its requests carry; undefined between calls. */
  #callParent: unknown

  constructor(session: SafeFetchSession, telemetry?: Telemetry) {
    this.#session = session
    this.#telemetry = telemetry
  }

  /** Starts a call's span (with telemetry) and makes it the parent of the call's requests until `end`. */
  startCall(exportName: string): CallInProgress {
    if (!this.#telemetry) return UNWATCHED
    const call = this.#telemetry.startCall(this.#session.capsuleId, exportName)
    this.#callParent = call.parent
    return {
      end: (error?: unknown) => {
        if (this.#callParent === call.parent) this.#callParent = undefined
        call.end(error)
      },
    }
  }

  /** The `via` of a request the current call makes, with `abi` and the rest of `extra`. */
  #viaOf(extra?: RequestVia): RequestVia | undefined {
    return this.#callParent === undefined ? extra : { ...extra, parent: this.#callParent }
  }

  get openStreams(): number {
    return this.#session.openStreams
  }

  /** The largest request a capsule may send (its session's `limits.maxRequestBytes`). */
  get maxRequestBytes(): number {
    return this.#session.limits.maxRequestBytes
  }

  /** `http_request`: request JSON bytes in, reply JSON bytes out (encoded once, by the safe fetch). Never throws. */
  async request(input: RequestInput): Promise<Uint8Array> {
    try {
      const reply = await this.#session.requestWire(input, undefined, this.#viaOf())
      return 'error' in reply ? json(reply) : reply.bytes
    } catch (error) {
      return json({ error: wireErrorOf(error) })
    }
  }

  /** `http_stream_start`: request JSON bytes in, `{ handle, status, rawHeaders }` (the header form asked for) or `{ error }` out. */
  async streamStart(input: RequestInput): Promise<Uint8Array> {
    let reply: Awaited<ReturnType<SafeFetchSession['stream']>>
    try {
      reply = await this.#session.stream(input, undefined, this.#viaOf())
    } catch (error) {
      reply = { error: wireErrorOf(error) }
    }
    if ('error' in reply) return json(reply)
    // The header form the request asked for (rawHeaders by default).
    return json({ handle: reply.handle, status: reply.status, ...headerForms(reply.responseHeaders, reply.rawHeaders, () => reply.headers) })
  }

  /**
   * Extism's kernel `http_request`, checked already (kernel-http.ts): the same safe fetch as
   * `request`, recorded with `abi: 'extism'`, the body kept as bytes. Never throws.
   */
  async kernelRequest(input: CheckedRequest): Promise<KernelReply> {
    try {
      const reply = await this.#session.requestBytes(input, undefined, this.#viaOf(KERNEL_VIA))
      if ('error' in reply) return { ok: false, error: reply.error }
      return { ok: true, status: reply.status, headers: extismHeaders(reply.rawHeaders), body: reply.body }
    } catch (error) {
      return { ok: false, error: wireErrorOf(error) }
    }
  }

  /** Records, for the audit log, a request the capsule's worker (or a kernel function) refused in validation. */
  recordInvalid(notice: { kind: 'request' | 'stream'; error: WireError; abi?: Abi }): void {
    // Host code writes the notice; anything but a known ABI is the default.
    const abi = ABIS.find((known) => known === notice.abi) ?? 'capsule-host'
    this.#session.recordInvalid(notice.kind, notice.error, this.#viaOf({ abi }))
  }

  #lookup(handle: Uint8Array | string): StreamedResponse {
    let text: string
    try {
      text = typeof handle === 'string' ? handle : utf8.decode(handle)
    } catch {
      throw new CapsuleHostError('invalid_request', 'the stream handle is not valid UTF-8')
    }
    const stream = HANDLE.test(text) ? this.#session.openStream(text) : undefined
    if (!stream) {
      throw new CapsuleHostError('invalid_request', `${JSON.stringify(text.slice(0, 32))} is not an open stream handle of this capsule`)
    }
    return stream
  }

  /**
   * `http_stream_read`: what has arrived, at most `capacity` bytes (the rest is kept for the next
   * read); empty at the end of the stream. An error (unknown handle, timeout, reset, cap) frees the handle.
   */
  async streamRead(handle: Uint8Array | string, capacity = Number.POSITIVE_INFINITY): Promise<ReadResult> {
    return this.#readOpen(handle, async (stream) => ({ ok: true, bytes: (await stream.read(capacity)) ?? new Uint8Array(0) }))
  }

  /**
   * `http_stream_read_into` on the capsule's own thread: what `streamRead(handle, target.byteLength)`
   * would return, copied straight into `target` (the capsule's memory). Same errors.
   */
  async streamReadInto(handle: string, target: Uint8Array): Promise<ReadIntoResult> {
    return this.#readOpen(handle, async (stream) => ({ ok: true, count: await stream.readInto(target) }))
  }

  /** Runs `read` on an open stream; an error (unknown handle, timeout, reset, cap) frees the handle. */
  async #readOpen<T>(handle: Uint8Array | string, read: (stream: StreamedResponse) => Promise<T>): Promise<T | { ok: false; error: WireError }> {
    let stream: StreamedResponse | undefined
    try {
      stream = this.#lookup(handle)
      return await read(stream)
    } catch (error) {
      stream?.close()
      return { ok: false, error: wireErrorOf(error) }
    }
  }

  /** `http_stream_close`: idempotent; an unknown handle is a no-op. */
  streamClose(handle: Uint8Array | string): void {
    try {
      this.#lookup(handle).close()
    } catch {
      // Not an open handle: nothing to close.
    }
  }

  /** Aborts every request and stream in flight, recording them as cancelled (the capsule was stopped). */
  closeAll(): void {
    void this.#session.release()
  }
}
