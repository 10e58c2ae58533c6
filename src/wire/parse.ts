// Parses what a capsule sent (bytes, text, a value, or a request a worker already checked) into a typed request.
import { z } from 'zod'
import { CapsuleHostError } from '../errors.js'
import { deepFreeze, PureCache } from '../pure-cache.js'
import { safeText } from '../safe-text.js'
import { HttpRequestSchema, REQUEST_BOUNDS, type HttpRequest } from './schemas.js'

const utf8 = new TextDecoder('utf-8', { fatal: true })
const encoder = new TextEncoder()

/** The longest validation message a capsule gets (zod lists every unknown key; a capsule can send 60k). */
const MAX_MESSAGE_CHARS = 1024

/** The refusal; its message may quote the capsule's keys and values, so it is escaped and capped. */
function invalid(message: string, cause?: unknown): CapsuleHostError {
  return new CapsuleHostError('invalid_request', safeText(message, MAX_MESSAGE_CHARS), { cause })
}

/** The refusal for a request over the size limit; the worker gives the same one without copying the bytes out. */
export function tooLargeMessage(size: number, maxBytes: number): string {
  return `the request is ${size} bytes; the limit is ${maxBytes}`
}

/** The request body's bytes, kept beside a request that came checked from a worker (never re-encoded). */
const BODY_BYTES = Symbol('capsule-host body bytes')
type WithBody = HttpRequest & { [BODY_BYTES]?: Uint8Array }

/** The bytes the request sends: the checked body as it came, or the body field encoded. */
export function bodyBytes(request: HttpRequest): Uint8Array | undefined {
  const own = (request as WithBody)[BODY_BYTES]
  if (own !== undefined) return own
  if (request.bodyBase64 !== undefined) return Buffer.from(request.bodyBase64, 'base64')
  return request.body === undefined ? undefined : Buffer.from(request.body, 'utf8')
}

function validate(value: unknown): HttpRequest {
  const result = HttpRequestSchema.safeParse(value)
  if (!result.success) throw invalid(`invalid request: ${z.prettifyError(result.error).replace(/\n\s*(?=[✖→])/g, '; ')}`)
  return result.data
}

/** The request's text, within `maxBytes` and valid UTF-8. */
function requestText(input: Uint8Array | string, maxBytes: number): string {
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength
  if (size > maxBytes) throw invalid(tooLargeMessage(size, maxBytes))
  try {
    return typeof input === 'string' ? input : utf8.decode(input)
  } catch (cause) {
    throw invalid('the request is not valid UTF-8', cause)
  }
}

function parseText(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch (cause) {
    throw invalid('the request is not valid JSON', cause)
  }
}

function parseBytes(input: Uint8Array | string, maxBytes: number): unknown {
  return parseText(requestText(input, maxBytes))
}

/**
 * Requests validated recently, by their exact JSON text, frozen (every request of that text
 * shares it): a capsule that sends the same small request again skips JSON.parse and zod. A
 * refusal is never stored; a text over 4 KiB, or one with a body, is validated each time.
 */
const VALIDATED = new PureCache((text: string) => deepFreeze(validate(parseText(text))), 1024, 4096)

// A checked request travels as one frame: [body form: u8][head length: u32 LE][head JSON][body bytes].
// The head is the validated request without its body, so the host never parses or transcodes the body.
const BODY_NONE = 0
const BODY_TEXT = 1
const BODY_BASE64 = 2
const FRAME_HEADER = 5

/**
 * A request a capsule's worker has already parsed and validated, as a frame. The host thread
 * re-validates only the small head (its size is bounded by REQUEST_BOUNDS) and takes the body as bytes.
 */
export class CheckedRequest {
  constructor(readonly frame: Uint8Array) {}

  /** Parses and validates raw request bytes (in the worker); throws `invalid_request` like parseRequest. */
  static check(input: Uint8Array, maxBytes: number): CheckedRequest {
    const { body, bodyBase64, ...head } = validate(parseBytes(input, maxBytes))
    const form = bodyBase64 !== undefined ? BODY_BASE64 : body !== undefined ? BODY_TEXT : BODY_NONE
    const bytes = bodyBase64 !== undefined ? Buffer.from(bodyBase64, 'base64') : body !== undefined ? encoder.encode(body) : undefined
    return CheckedRequest.#frame(head, form, bytes)
  }

  /**
   * A request given as a head (validated here, like any request) and body bytes that are never
   * transcoded: how Extism's kernel `http_request` hands over its separate body block. The head
   * and body together are held to `maxBytes`.
   */
  static fromParts(head: unknown, body: Uint8Array | undefined, maxBytes: number): CheckedRequest {
    if (body !== undefined && body.byteLength > maxBytes) throw invalid(tooLargeMessage(body.byteLength, maxBytes))
    const request = validate(head)
    if (request.body !== undefined || request.bodyBase64 !== undefined) throw invalid('the request head may not carry a body')
    const checked = CheckedRequest.#frame(request, body === undefined ? BODY_NONE : BODY_BASE64, body)
    const size = checked.frame.byteLength - FRAME_HEADER
    if (size > maxBytes) throw invalid(tooLargeMessage(size, maxBytes))
    return checked
  }

  static #frame(head: Omit<HttpRequest, 'body' | 'bodyBase64'>, form: number, bytes: Uint8Array | undefined): CheckedRequest {
    const headBytes = encoder.encode(JSON.stringify(head))
    if (headBytes.byteLength > REQUEST_BOUNDS.headBytes) {
      throw invalid(`the request's URL, headers and options take ${headBytes.byteLength} bytes; the limit is ${REQUEST_BOUNDS.headBytes}`)
    }
    const frame = new Uint8Array(FRAME_HEADER + headBytes.byteLength + (bytes?.byteLength ?? 0))
    frame[0] = form
    new DataView(frame.buffer).setUint32(1, headBytes.byteLength, true)
    frame.set(headBytes, FRAME_HEADER)
    if (bytes) frame.set(bytes, FRAME_HEADER + headBytes.byteLength)
    return new CheckedRequest(frame)
  }

  /** The request, with its body kept as bytes; `body`/`bodyBase64` are produced only if read. */
  parse(maxBytes: number): HttpRequest {
    const { frame } = this
    const form = frame[0]
    const headLength = frame.byteLength >= FRAME_HEADER ? new DataView(frame.buffer, frame.byteOffset).getUint32(1, true) : -1
    if (form === undefined || form > BODY_BASE64 || headLength < 0 || FRAME_HEADER + headLength > frame.byteLength) {
      throw invalid('the checked request frame is malformed')
    }
    const size = frame.byteLength - FRAME_HEADER
    if (size > maxBytes) throw invalid(tooLargeMessage(size, maxBytes))
    const request = validate(parseBytes(frame.subarray(FRAME_HEADER, FRAME_HEADER + headLength), maxBytes)) as WithBody
    if (form === BODY_NONE) return request
    const body = frame.subarray(FRAME_HEADER + headLength)
    request[BODY_BYTES] = body
    const field = form === BODY_TEXT ? 'body' : 'bodyBase64'
    let text: string | undefined
    Object.defineProperty(request, field, {
      enumerable: true,
      get: () => (text ??= Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString(form === BODY_TEXT ? 'utf8' : 'base64')),
    })
    return request
  }
}

/**
 * Accepts the request as raw bytes (what a host function reads from capsule memory), as JSON
 * text, as an already-parsed value, or checked by a worker. Bytes and text are capped at
 * `maxBytes` before parsing.
 */
export function parseRequest(input: unknown, maxBytes: number): HttpRequest {
  if (input instanceof CheckedRequest) return input.parse(maxBytes)
  if (input instanceof Uint8Array || typeof input === 'string') {
    const text = requestText(input, maxBytes)
    // A request with a body is validated each time: a capsule's bodies are never kept past its request.
    return text.includes('"body') ? validate(parseText(text)) : VALIDATED.get(text)
  }
  return validate(input)
}
