// Builds what the capsule receives from a settled answer: bodies encoded as asked, scrubbed of the request's secrets.
import { CapsuleHostError, wireErrorOf, type WireError } from '../errors.js'
import { safeText } from '../safe-text.js'
import type { BodyContent } from '../middleware/respond.js'
import type { Answer } from '../middleware/results.js'
import { readAll, wholeBody, type BodyReader } from '../net/dispatch-hop.js'
import { headerObject, type HeaderList } from '../net/headers.js'
import { checkIntegrity } from '../net/integrity.js'
import type { BufferedResponse, HeaderForm } from '../wire/schemas.js'
import { utf8Bytes } from '../utf8-bytes.js'
import type { ExchangeResult } from './exchange.js'
import type { PreparedRequest } from './prepare.js'
import type { RequestSecrets } from './secrets.js'
import type { RequestTrace } from './trace.js'

const utf8 = new TextDecoder('utf-8', { fatal: true })

function encodeBody(body: Uint8Array, as: 'text' | 'base64'): string {
  if (as === 'base64') return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64')
  try {
    return utf8.decode(body)
  } catch {
    throw new CapsuleHostError('invalid_request', 'the response body is not valid UTF-8; ask for responseBody: "base64"', {
      detail: 'the response body is not valid UTF-8 and the capsule asked for text',
    })
  }
}

/** Reads bytes already in memory as a body: one piece (split at `maxBytes`), then the end. */
export function memoryReader(bytes: Uint8Array): BodyReader {
  let rest: Uint8Array | undefined = bytes.byteLength > 0 ? bytes : undefined
  return {
    get bytesRead() {
      return bytes.byteLength - (rest?.byteLength ?? 0)
    },
    get buffered() {
      return rest?.byteLength ?? 0
    },
    async read(maxBytes = Number.POSITIVE_INFINITY) {
      if (!rest) return null
      const piece = rest.subarray(0, Math.min(rest.byteLength, maxBytes))
      rest = piece.byteLength < rest.byteLength ? rest.subarray(piece.byteLength) : undefined
      return piece
    },
    cancel() {
      rest = undefined
    },
  }
}

/** Response headers with secrets replaced (the list itself when there is no secret). */
function scrubbedHeaders(rawHeaders: HeaderList, secrets: RequestSecrets): HeaderList {
  return secrets.size === 0 ? rawHeaders : secrets.scrubHeaders(rawHeaders)
}

/** The headers with content-length set to `length`, or dropped when it is undefined. */
function withLength(rawHeaders: HeaderList, length: number | undefined): HeaderList {
  const list = rawHeaders.filter(([name]) => name !== 'content-length')
  return length === undefined ? list : [...list, ['content-length', String(length)]]
}

/**
 * With a secret in force, a body the upstream compressed anyway (capsule-host asks for identity)
 * cannot be checked for the secret, so it is not passed on.
 */
function checkScannable(rawHeaders: HeaderList, secrets: RequestSecrets): void {
  if (secrets.size === 0) return
  // Every coding of every content-encoding, and every transfer coding but chunked (undici decodes only that one).
  const codings = rawHeaders.flatMap(([name, value]) =>
    name === 'content-encoding' || name === 'transfer-encoding' ? value.split(',').map((c) => c.trim().toLowerCase()) : [],
  )
  const encoding = codings.find((coding) => coding !== '' && coding !== 'identity' && coding !== 'chunked')
  if (encoding === undefined) return
  const shown = safeText(encoding, 64)
  throw new CapsuleHostError('network', `the upstream sent a body with content-encoding "${shown}" although identity was asked; with a secret in force it cannot be checked, so it is not passed on`, {
    detail: `content-encoding "${shown}" with a secret in force`,
  })
}

/** A buffered answer as the capsule may see it: scrubbed head and body, integrity checked. */
interface ScrubbedAnswer {
  status: number
  rawHeaders: HeaderList
  content: { kind: 'bytes'; bytes: Uint8Array } | { kind: 'json'; value: unknown }
  meta: BufferedResponse['meta']
}

/**
 * The answer's body: at once when the whole body is already in (a small body usually arrives with
 * its head), else once it is read. Its bytes are counted either way, also when it failed part-way
 * (too large, idle, reset): the byte quotas charge what came off the wire.
 */
function answerContent(answer: ExchangeResult['answer'], trace: RequestTrace): BodyContent | Promise<BodyContent> {
  if ('content' in answer.body) return answer.body.content
  const { stream } = answer.body
  const whole = wholeBody(stream)
  if (whole !== undefined) {
    trace.received(stream.bytesRead)
    return { kind: 'bytes', bytes: whole }
  }
  return readAll(stream).then(
    (bytes): BodyContent => {
      trace.received(stream.bytesRead)
      return { kind: 'bytes', bytes }
    },
    (error: unknown) => {
      trace.received(stream.bytesRead)
      throw error
    },
  )
}

/** A buffered answer's reply made by `build` from its scrubbed form: synchronously when the whole body is in. */
function withScrubbedAnswer<R>(result: ExchangeResult, prepared: PreparedRequest, secrets: RequestSecrets, trace: RequestTrace, elapsedMs: () => number, build: (answer: ScrubbedAnswer) => R): R | Promise<R> {
  const content = answerContent(result.answer, trace)
  return content instanceof Promise
    ? content.then((read) => build(scrubbedAnswer(result, read, prepared, secrets, elapsedMs)))
    : build(scrubbedAnswer(result, content, prepared, secrets, elapsedMs))
}

function scrubbedAnswer(result: ExchangeResult, content: BodyContent, prepared: PreparedRequest, secrets: RequestSecrets, elapsedMs: () => number): ScrubbedAnswer {
  const { answer } = result
  if (content.kind !== 'json') checkScannable(answer.rawHeaders, secrets)
  const meta = { finalUrl: secrets.scrubText(result.finalUrl.href), redirects: result.redirects, elapsedMs: elapsedMs() }
  if (content.kind === 'json') {
    return { status: answer.status, rawHeaders: scrubbedHeaders(answer.rawHeaders, secrets), content: { kind: 'json', value: secrets.scrubValue(content.value) }, meta }
  }
  const bytes = secrets.scrubBytes(content.bytes)
  // Checked on what the capsule gets: a check of the unscrubbed bytes would let it confirm a guessed secret.
  if (prepared.integrity) checkIntegrity(bytes, prepared.integrity)
  // A replacement changes the body's length; the header then says the new one.
  const scrubbed = scrubbedHeaders(answer.rawHeaders, secrets)
  const rawHeaders = bytes === content.bytes ? scrubbed : withLength(scrubbed, bytes.byteLength)
  return { status: answer.status, rawHeaders, content: { kind: 'bytes', bytes }, meta }
}

/** The body as the capsule asked for it: text or base64, or the JSON value a middleware answered with. */
function encodedBody(content: ScrubbedAnswer['content'], prepared: PreparedRequest): { body: unknown; bodyEncoding: BufferedResponse['bodyEncoding'] } {
  if (content.kind === 'json') return { body: content.value, bodyEncoding: 'json' }
  return { body: encodeBody(content.bytes, prepared.responseBody), bodyEncoding: prepared.responseBody }
}

/** The arguments every buffered reply is made from. */
export type ReplyArguments = [result: ExchangeResult, prepared: PreparedRequest, secrets: RequestSecrets, trace: RequestTrace, elapsedMs: () => number]

/** The buffered reply of the host's API: both header forms, body encoded as asked; at once when the whole body is in. */
export function bufferedReply(...args: ReplyArguments): BufferedResponse | Promise<BufferedResponse> {
  const prepared = args[1]
  return withScrubbedAnswer(...args, ({ status, rawHeaders, content, meta }): BufferedResponse => {
    const { body, bodyEncoding } = encodedBody(content, prepared)
    // Made at once: an object literal with a lazy getter cost four times a small header object.
    return { status, headers: headerObject(rawHeaders), rawHeaders, body, bodyEncoding, meta }
  })
}

/**
 * The header fields of a capsule's reply in the form its request asked for: `rawHeaders` (list),
 * `headers` (object, made only then) or both; the other is undefined, which JSON leaves out.
 */
export function headerForms(form: HeaderForm, rawHeaders: HeaderList, headers: () => Record<string, string>) {
  return { headers: form === 'list' ? undefined : headers(), rawHeaders: form === 'object' ? undefined : rawHeaders }
}

/** A capsule's `http_request` reply, encoded once: JSON bytes, with the header form the request asked for. */
export interface WireReply {
  readonly status: number
  readonly bytes: Uint8Array
}

/**
 * What `http_request` hands a capsule: the reply JSON with `rawHeaders` (default), `headers`, or
 * both when the request's `responseHeaders` asks, so no field is carried twice unless asked.
 */
export function wireReply(...args: ReplyArguments): WireReply | Promise<WireReply> {
  const prepared = args[1]
  return withScrubbedAnswer(...args, ({ status, rawHeaders, content, meta }): WireReply => {
    const { body, bodyEncoding } = encodedBody(content, prepared)
    const forms = headerForms(prepared.responseHeaders, rawHeaders, () => headerObject(rawHeaders))
    // JSON.stringify leaves out the header form that is undefined (no spread: one object of one shape).
    const reply = { status, headers: forms.headers, rawHeaders: forms.rawHeaders, body, bodyEncoding, meta }
    // A fresh buffer of its own: Extism adopts it.
    return { status, bytes: utf8Bytes(JSON.stringify(reply)) }
  })
}

/** A buffered reply whose body stays bytes (no text or base64 step): what Extism's kernel HTTP returns. */
export interface BytesResponse {
  status: number
  rawHeaders: HeaderList
  /** The body; a middleware's JSON value is its JSON text. */
  body: Uint8Array
  meta: BufferedResponse['meta']
}

/** The buffered reply with the body as bytes, scrubbed and checked exactly as bufferedReply's. */
export function bytesReply(...args: ReplyArguments): BytesResponse | Promise<BytesResponse> {
  return withScrubbedAnswer(...args, ({ status, rawHeaders, content, meta }): BytesResponse => {
    const body = content.kind === 'json' ? utf8Bytes(JSON.stringify(content.value) ?? 'null') : content.bytes
    return { status, rawHeaders, body, meta }
  })
}

/** A stream's head and reader as the capsule gets them: scrubbed as the bytes pass. */
export function streamedAnswer(answer: Answer, secrets: RequestSecrets): { rawHeaders: HeaderList; body: BodyReader } {
  const reader = 'stream' in answer.body ? answer.body.stream : memoryReader(answer.body.content.bytes)
  if (secrets.size === 0) return { rawHeaders: answer.rawHeaders, body: reader }
  try {
    checkScannable(answer.rawHeaders, secrets)
  } catch (error) {
    reader.cancel()
    throw error
  }
  // Replacements may change the length, and the head goes before the body is seen: no content-length.
  return { rawHeaders: withLength(scrubbedHeaders(answer.rawHeaders, secrets), undefined), body: secrets.scrubReader(reader) }
}

/** The wire error a capsule gets: its message scrubbed of the request's secrets. */
export function scrubbedWireError(error: unknown, secrets: RequestSecrets): WireError {
  const wire = wireErrorOf(error)
  return secrets.size === 0 ? wire : { ...wire, message: secrets.scrubText(wire.message) }
}
