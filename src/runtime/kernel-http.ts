// Extism's kernel HTTP (`extism:host/env` http_request, http_status_code, http_headers), served through the safe fetch.
import type { CallContext } from '@extism/extism'
import type { WireError } from '../errors.js'
import { CapsuleHostError, wireErrorOf } from '../errors.js'
import type { HeaderList } from '../net/headers.js'
import { safeText } from '../safe-text.js'
import { CheckedRequest } from '../wire/parse.js'
import type { ChannelReply } from './channel.js'
import { HostFailure } from './host-functions.js'
import { blockBytes, storeCopy, type KernelBudget } from './kernel-guards.js'

/**
 * What a kernel request came back as: the status, the response headers as Extism's JSON object
 * (UTF-8), and the body; or the wire error that failed it.
 */
export type KernelReply =
  | { readonly ok: true; readonly status: number; readonly headers: Uint8Array; readonly body: Uint8Array }
  | { readonly ok: false; readonly error: WireError }

const encoder = new TextEncoder()
const utf8 = new TextDecoder('utf-8', { fatal: true })

/** The fields of Extism's request JSON (extism-manifest `HttpRequest`); `header` is the JS SDK's alias of `headers`. */
const EXTISM_FIELDS = new Set(['url', 'method', 'headers', 'header'])

function invalid(message: string): CapsuleHostError {
  return new CapsuleHostError('invalid_request', safeText(message, 1024))
}

function extismJson(request: Uint8Array, maxBytes: number): Record<string, unknown> {
  if (request.byteLength > maxBytes) throw invalid(`the request is ${request.byteLength} bytes; the limit is ${maxBytes}`)
  let value: unknown
  try {
    value = JSON.parse(utf8.decode(request))
  } catch {
    throw invalid('the Extism request is not valid UTF-8 JSON')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('the Extism request must be a JSON object with a "url"')
  return value as Record<string, unknown>
}

/**
 * Translates Extism's request (`{ url, method?, headers? }` JSON, and the body block's bytes or
 * undefined for offset 0) into a checked capsule-host request: the same validation as the
 * capsule-host ABI, the body never transcoded. `method` defaults to GET; `null` for `method` or
 * `headers` (the Go PDK's empty map) means absent. Throws `invalid_request`.
 */
export function kernelRequest(request: Uint8Array, body: Uint8Array | undefined, maxBytes: number): CheckedRequest {
  const json = extismJson(request, maxBytes)
  const unknown = Object.keys(json).find((key) => !EXTISM_FIELDS.has(key))
  if (unknown !== undefined) throw invalid(`the Extism request has an unknown field ${JSON.stringify(unknown)}; it may hold url, method and headers`)
  if ('headers' in json && 'header' in json) throw invalid('give headers or header, not both')
  const { url, method } = json
  const headers = json.headers ?? json.header
  if (typeof url !== 'string') throw invalid('the Extism request needs a "url" string')
  const head = {
    url,
    ...(method === undefined || method === null ? {} : { method }),
    ...(headers === undefined || headers === null ? {} : { headers }),
  }
  return CheckedRequest.fromParts(head, body, maxBytes)
}

/**
 * The response headers as Extism hands them to `http_headers`: one JSON object with lower-case
 * names. Repeated field lines are joined with ", " (RFC 9110 §5.3), except `set-cookie`, which
 * cannot be combined that way (its values hold commas): its lines are joined with "\n", a
 * character no field value can contain, so none is lost. Extism keeps one set-cookie only.
 */
export function extismHeaders(rawHeaders: HeaderList): Uint8Array {
  const object: Record<string, string> = Object.create(null)
  for (const [name, value] of rawHeaders) {
    const joiner = name === 'set-cookie' ? '\n' : ', '
    object[name] = name in object ? `${object[name]}${joiner}${value}` : value
  }
  return encoder.encode(JSON.stringify(object))
}

/** A successful reply on the channel: [u32 status][u32 headers length][headers JSON][body]. */
export function encodeKernelReply(reply: KernelReply): ChannelReply {
  if (!reply.ok) return { status: 1, bytes: encoder.encode(JSON.stringify(reply.error)) }
  const bytes = new Uint8Array(8 + reply.headers.byteLength + reply.body.byteLength)
  const view = new DataView(bytes.buffer)
  view.setUint32(0, reply.status, true)
  view.setUint32(4, reply.headers.byteLength, true)
  bytes.set(reply.headers, 8)
  bytes.set(reply.body, 8 + reply.headers.byteLength)
  return { status: 0, bytes }
}

/** The reply as the worker reads it; the body may be a view of the channel (use it before the next call). */
export function decodeKernelReply(reply: ChannelReply): KernelReply {
  if (reply.status !== 0) return { ok: false, error: JSON.parse(new TextDecoder().decode(reply.bytes)) as WireError }
  const { bytes } = reply
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const headersEnd = 8 + view.getUint32(4, true)
  return { ok: true, status: view.getUint32(0, true), headers: bytes.subarray(8, headersEnd), body: bytes.subarray(headersEnd) }
}

type MaybePromise<T, Mode extends 'sync' | 'async'> = Mode extends 'sync' ? T : Promise<T>

/** How the kernel HTTP functions reach the capsule's safe-fetch session, in one isolation mode. */
export interface KernelHttpIo<Mode extends 'sync' | 'async'> {
  /** Sends a checked request as the Extism ABI; never throws for what the capsule caused. */
  send(request: CheckedRequest): MaybePromise<KernelReply, Mode>
  /** Records, for the audit log, a request refused in validation (it never reached the safe fetch). */
  refused(error: WireError): void
  /** Throws when the call must stop (time limit passed, capsule unloaded); checked around each wait. */
  checkpoint(): void
  readonly budget: KernelBudget
  readonly maxRequestBytes: number
}

/** The last response's status and headers, for http_status_code and http_headers (reset by every request). */
class LastResponse {
  status = 0
  headers: Uint8Array = encoder.encode('{}')

  reset(): void {
    this.status = 0
    this.headers = encoder.encode('{}')
  }
}

/**
 * Fails the call for a refused or failed kernel request, its message starting with the code
 * (`denied: GET … is not allowed`), which is how Extism reports an HTTP error to its PDKs.
 */
function kernelFailure(wire: WireError): HostFailure {
  return new HostFailure(wire, `${wire.code}: ${wire.message}`)
}

function blockOf(context: CallContext, offset: bigint, what: string): Uint8Array {
  const bytes = blockBytes(context, offset)
  if (!bytes) throw kernelFailure({ code: 'invalid_request', message: `${what} ${offset} is not a block of this capsule` })
  return bytes
}

/** Reads and checks the capsule's request; a refusal is recorded and fails the call. */
function checkedOf(io: KernelHttpIo<'sync' | 'async'>, context: CallContext, request: bigint, body: bigint): CheckedRequest {
  try {
    const bodyBytes = body === 0n ? undefined : blockOf(context, body, 'the body offset')
    return kernelRequest(blockOf(context, request, 'the request offset'), bodyBytes, io.maxRequestBytes)
  } catch (error) {
    const wire = error instanceof HostFailure ? error.wire : wireErrorOf(error)
    io.refused(wire)
    throw kernelFailure(wire)
  }
}

/** Keeps the status and headers, and returns the body as a new block; an error fails the call. */
function answer(io: KernelHttpIo<'sync' | 'async'>, context: CallContext, last: LastResponse, reply: KernelReply): bigint {
  if (!reply.ok) throw kernelFailure(reply.error)
  last.status = reply.status
  last.headers = reply.headers.slice()
  return storeCopy(io.budget, context, reply.body)
}

function statusAndHeaders(io: KernelHttpIo<'sync' | 'async'>, last: LastResponse) {
  return {
    http_status_code: () => last.status,
    http_headers: (context: CallContext) => storeCopy(io.budget, context, last.headers),
  }
}

/** The kernel HTTP functions for a capsule on its own worker thread: each request blocks on the main thread. */
export function syncKernelHttpFunctions(io: KernelHttpIo<'sync'>) {
  const last = new LastResponse()
  return {
    http_request: (context: CallContext, request: bigint, body: bigint) => {
      last.reset()
      return answer(io, context, last, io.send(checkedOf(io, context, request, body)))
    },
    ...statusAndHeaders(io, last),
  }
}

/** The kernel HTTP functions for a capsule on the host's thread: http_request is async, so JSPI suspends the capsule. */
export function asyncKernelHttpFunctions(io: KernelHttpIo<'async'>) {
  const last = new LastResponse()
  return {
    http_request: async (context: CallContext, request: bigint, body: bigint) => {
      last.reset()
      io.checkpoint()
      const reply = await io.send(checkedOf(io, context, request, body))
      io.checkpoint()
      return answer(io, context, last, reply)
    },
    ...statusAndHeaders(io, last),
  }
}
