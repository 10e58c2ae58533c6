// Turns what a middleware returned into the response the middleware above it (or the capsule) gets.
import { headerObject, type HeaderList } from '../net/headers.js'
import type { BodyReader } from '../net/transport/types.js'
import { bodyContent, checkedHead, jsonContent, SyntheticResponse, type BodyContent, type RespondInit } from './respond.js'
import type { JsonValue, MiddlewareResponse } from './types.js'

/** A response's body: bytes in memory, or the upstream's unread stream. */
export type AnswerBody = { readonly content: BodyContent } | { readonly stream: BodyReader }

/** A response as the chain settled it. */
export interface Answer {
  readonly status: number
  readonly rawHeaders: HeaderList
  readonly body: AnswerBody
  /** The upstream's own response, unchanged: only such a response is followed as a redirect. */
  readonly upstream: boolean
}

const ORIGIN = Symbol('capsule-host response')

/** A response object middleware sees; copies made with `{ ...res }` carry the symbol along. */
export interface ChainResponse extends MiddlewareResponse {
  readonly [ORIGIN]: { readonly answer: Answer; readonly response: ChainResponse }
}

const decoder = new TextDecoder()

function streamBodyError(): TypeError {
  return new TypeError('the body of a stream is not buffered (ctx.req.kind is "stream"); a middleware can read its status and headers only')
}

/** The object a middleware gets from `next()` (or above it, from the middleware below). */
export function chainResponse(answer: Answer, elapsedMs: number): ChainResponse {
  const body = 'content' in answer.body ? answer.body.content.bytes : undefined
  const content = 'content' in answer.body ? answer.body.content : undefined
  const bytes = (): Uint8Array => {
    if (!body) throw streamBodyError()
    return body
  }
  const response: ChainResponse = {
    status: answer.status,
    headers: Object.freeze(headerObject(answer.rawHeaders)),
    rawHeaders: Object.freeze(answer.rawHeaders.map(([n, v]) => Object.freeze([n, v] as const))),
    body,
    text: () => decoder.decode(bytes()),
    json: () => (content?.kind === 'json' ? content.value : JSON.parse(decoder.decode(bytes()))) as JsonValue,
    elapsedMs,
    [ORIGIN]: { answer, get response() { return response } },
  }
  return response
}

/** `{ status, headers?, body? }` and nothing else: a response written as a plain object. */
function isResponseShaped(value: unknown): value is { status: number; headers?: Record<string, string>; body?: unknown } {
  if (typeof value !== 'object' || value === null || Object.getPrototypeOf(value) !== Object.prototype) return false
  const status = (value as { status?: unknown }).status
  return (
    typeof status === 'number' && Number.isInteger(status) && status >= 100 && status <= 599 &&
    Object.keys(value).every((key) => key === 'status' || key === 'headers' || key === 'body')
  )
}

function madeAnswer(made: SyntheticResponse): Answer {
  return { status: made.status, rawHeaders: Object.entries(made.headers), body: { content: made.content }, upstream: false }
}

/** Headers for a body that replaced another: its length goes, and a JSON body says it is JSON. */
function headersForNewBody(rawHeaders: ReadonlyArray<readonly [string, string]>, content: BodyContent): HeaderList {
  const kept = rawHeaders.filter(([name]) => name !== 'content-length' && !(content.kind === 'json' && name === 'content-type'))
  return content.kind === 'json' ? [...kept.map(([n, v]): [string, string] => [n, v]), ['content-type', 'application/json']] : kept.map(([n, v]) => [n, v])
}

/** A copy of a response with fields replaced (`{ ...res, body: data }`) is that response with those fields. */
function copiedAnswer(copy: Record<PropertyKey, unknown>, base: ChainResponse): Answer {
  const { answer } = base[ORIGIN]
  const replaced = {
    status: copy.status !== base.status,
    headers: copy.headers !== base.headers,
    rawHeaders: copy.rawHeaders !== base.rawHeaders,
    body: copy.body !== base.body,
  }
  if (!replaced.status && !replaced.headers && !replaced.rawHeaders && !replaced.body) return answer
  const where = 'a copy of a response'
  const { status, headers } = checkedHead(copy.status, replaced.headers ? copy.headers : undefined, where)
  let rawHeaders: HeaderList = replaced.headers ? Object.entries(headers) : replaced.rawHeaders ? checkedRawHeaders(copy.rawHeaders, where) : answer.rawHeaders
  let body = answer.body
  if (replaced.body) {
    const content = bodyContent(copy.body, where)
    body = { content }
    if (!replaced.headers && !replaced.rawHeaders) rawHeaders = headersForNewBody(rawHeaders, content)
  }
  return { status, rawHeaders, body, upstream: false }
}

function checkedRawHeaders(value: unknown, where: string): HeaderList {
  if (!Array.isArray(value)) throw new TypeError(`${where}: rawHeaders must be a list of [name, value] pairs`)
  return value.map((pair) => {
    if (!Array.isArray(pair) || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      throw new TypeError(`${where}: rawHeaders must be a list of [name, value] pairs of strings`)
    }
    return [pair[0].toLowerCase(), pair[1]]
  })
}

/**
 * What one middleware's result stands for, given what its own `next()` resolved to (if it called it).
 * See MiddlewareResult for the rules. Throws a TypeError (a host bug, `internal` to the capsule)
 * for a result that cannot be a response.
 */
export function settle(result: unknown, fromNext: ChainResponse | undefined, elapsedMs: number): ChainResponse {
  if (result instanceof SyntheticResponse) return chainResponse(madeAnswer(result), elapsedMs)
  if (result === undefined) {
    if (fromNext) return fromNext
    throw new TypeError('a middleware returned nothing and never called next(); return respond({ status }) or json(value) to answer')
  }
  if (typeof result === 'object' && result !== null && ORIGIN in result) {
    const base = (result as ChainResponse)[ORIGIN].response
    return result === base ? base : chainResponse(copiedAnswer(result as Record<PropertyKey, unknown>, base), elapsedMs)
  }
  if (isResponseShaped(result)) return chainResponse(madeAnswer(new SyntheticResponse(result as RespondInit, 'a middleware response')), elapsedMs)
  if (!fromNext) {
    throw new TypeError('a middleware returned a value without calling next(); return respond({ status, body }) or json(value) to answer')
  }
  // Any other value after next() is the JSON body of the response next() gave.
  const content = jsonContent(result, 'the value a middleware returned')
  const { answer } = fromNext[ORIGIN]
  return chainResponse({ status: answer.status, rawHeaders: headersForNewBody(answer.rawHeaders, content), body: { content }, upstream: false }, elapsedMs)
}

/** The answer a settled response stands for. */
export function answerOf(response: ChainResponse): Answer {
  return response[ORIGIN].answer
}
