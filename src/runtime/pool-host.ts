// Serves a pooled capsule's host calls on the main thread: its CapsuleHttp answers, and the stream handles it opened are tracked.
import { INTERNAL_WIRE_ERROR } from '../errors.js'
import { CheckedRequest } from '../wire/parse.js'
import type { CapsuleHttp } from './capsule-http.js'
import type { HostAnswer, HostAsk, HostNotice } from './pool-protocol.js'

const latin1 = new TextDecoder('latin1')
const encoder = new TextEncoder()
/** How CapsuleHttp.streamStart's reply begins when a stream opened. */
const OPENED = /^\{"handle":"([1-9][0-9]{0,15})"/

/** Bytes to post: a view of a larger buffer (a pooled Buffer, a chunk of a socket's read) is copied out and that copy moved. */
function compact(bytes: Uint8Array, transfer: ArrayBuffer[]): Uint8Array {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) return bytes
  const copy = new Uint8Array(bytes) // a copy (a Buffer's slice() would be a view)
  transfer.push(copy.buffer)
  return copy
}

/** A failure of ours still answers, so the capsule never waits forever. */
export function internalAnswer(op: HostAsk['op']): HostAnswer {
  if (op === 'request' || op === 'streamStart') return encoder.encode(JSON.stringify({ error: INTERNAL_WIRE_ERROR }))
  return { ok: false, error: { ...INTERNAL_WIRE_ERROR } }
}

/** One pooled capsule's host service on the main thread. */
export class PoolHost {
  /** Streams this capsule opened and has not ended: closed when its instance is replaced (the new one knows no handles). */
  readonly #streams = new Set<string>()

  constructor(readonly http: CapsuleHttp) {}

  /** The answer to a host call, and the buffers to move with it. */
  async answer(call: HostAsk): Promise<{ value: HostAnswer; transfer: ArrayBuffer[] }> {
    const transfer: ArrayBuffer[] = []
    try {
      return { value: await this.#answer(call, transfer), transfer }
    } catch {
      return { value: internalAnswer(call.op), transfer: [] }
    }
  }

  async #answer(call: HostAsk, transfer: ArrayBuffer[]): Promise<HostAnswer> {
    switch (call.op) {
      case 'request':
        return compact(await this.http.request(call.input), transfer)
      case 'streamStart': {
        const reply = await this.http.streamStart(call.input)
        const opened = OPENED.exec(latin1.decode(reply.subarray(0, 32)))
        if (opened) this.#streams.add(opened[1]!)
        return compact(reply, transfer)
      }
      case 'streamRead': {
        const result = await this.http.streamRead(call.handle, call.capacity)
        // The end of a stream, or an error (which frees it): its handle is no longer open.
        if (!result.ok || result.bytes.byteLength === 0) this.#streams.delete(this.#name(call.handle))
        return result.ok ? { ok: true, bytes: compact(result.bytes, transfer) } : result
      }
      case 'kernelRequest': {
        const reply = await this.http.kernelRequest(new CheckedRequest(call.frame))
        return reply.ok ? { ...reply, headers: compact(reply.headers, transfer), body: compact(reply.body, transfer) } : reply
      }
    }
  }

  /** A host call that needs no answer. */
  notice(call: HostNotice): void {
    if (call.op === 'refused') return this.http.recordInvalid(call.notice)
    this.#streams.delete(this.#name(call.handle))
    this.http.streamClose(call.handle)
  }

  /**
   * An answer the instance that asked will never see (its thread was replaced while the call was
   * served): a stream it opened is closed now, or it would hold one of the capsule's stream slots
   * until the capsule is unloaded.
   */
  discard(call: HostAsk, value: HostAnswer): void {
    if (call.op !== 'streamStart' || !(value instanceof Uint8Array)) return
    const opened = OPENED.exec(latin1.decode(value.subarray(0, 32)))
    if (!opened) return
    this.#streams.delete(opened[1]!)
    this.http.streamClose(opened[1]!)
  }

  /** Closes every stream the capsule still holds open (its instance is being replaced). */
  closeStreams(): void {
    for (const handle of this.#streams) this.http.streamClose(handle)
    this.#streams.clear()
  }

  #name(handle: Uint8Array | string): string {
    return typeof handle === 'string' ? handle : latin1.decode(handle)
  }
}
