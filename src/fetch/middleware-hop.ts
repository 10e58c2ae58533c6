// Runs one hop through the middleware chain: the request middleware may change, and the response it gives back.
import { CapsuleHostError, isCapsuleHostError } from '../errors.js'
import type { Decision } from '../gate/types.js'
import { runChain } from '../middleware/compose.js'
import { respond, SyntheticResponse } from '../middleware/respond.js'
import type { Middleware, MiddlewareRequest, MiddlewareResponse } from '../middleware/types.js'
import { readAll, type BodyReader, type HopLimits, type ResponseHead } from '../net/dispatch-hop.js'
import { checkRequestHeaders, headerObject, type HeaderList } from '../net/headers.js'
import type { ClassifiedAddress } from '../net/classify.js'
import { HostClock, type HostBudget } from './host-deadline.js'
import { normaliseUrl, type NormalisedUrl } from '../url/normalise.js'
import type { HttpRequest } from '../wire/schemas.js'

/** What one hop produced, after middleware. */
export interface HopOutcome {
  /** Status, headers and a reader of the body the capsule gets. */
  readonly head: ResponseHead
  /** True when this is the upstream's own response (only those are followed as redirects). */
  readonly upstream: boolean
  /** Set when middleware answered with a value: the capsule gets it as `bodyEncoding: "json"`. */
  readonly json?: { readonly value: unknown }
  /** The URL the terminal sent (middleware may have rewritten it). */
  readonly sentUrl: NormalisedUrl
}

export interface MiddlewareHop {
  readonly chain: readonly Middleware[]
  readonly mode: 'buffered' | 'stream'
  readonly capsuleId: string
  readonly hop: number
  readonly raw: Readonly<HttpRequest>
  readonly decision: Extract<Decision, { allowed: true }>
  readonly url: NormalisedUrl
  readonly method: string
  readonly headers: HeaderList
  readonly body: Uint8Array | undefined
  readonly address: ClassifiedAddress
  readonly limits: HopLimits
  /** Bounds the middleware's own time on this hop (the network inside `next()` is not counted). */
  readonly budget: HostBudget
  /** Judges a URL middleware set: gates, one resolution, the address policy; returns the address to dial. */
  readonly admit: (url: NormalisedUrl) => Promise<ClassifiedAddress>
  readonly dispatch: (url: NormalisedUrl, address: ClassifiedAddress, method: string, headers: HeaderList, body: Uint8Array | undefined) => Promise<ResponseHead>
}

/** Reads bytes already in memory as a body: one piece (split at `maxBytes`), then the end. */
export function memoryReader(bytes: Uint8Array): BodyReader {
  let rest: Uint8Array | undefined = bytes.byteLength > 0 ? bytes : undefined
  return {
    get bytesRead() {
      return bytes.byteLength - (rest?.byteLength ?? 0)
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

const SOURCE = Symbol('capsule-host response source')
type Source = { kind: 'upstream'; head: ResponseHead } | { kind: 'synthetic' } | { kind: 'json'; value: unknown }
type ChainResponse = MiddlewareResponse & { readonly [SOURCE]: Source }

const decoder = new TextDecoder()
const encoder = new TextEncoder()

function chainResponse(
  status: number,
  rawHeaders: ReadonlyArray<readonly [string, string]>,
  body: Uint8Array | undefined,
  elapsedMs: number,
  source: Source,
): ChainResponse {
  const bytes = () => {
    if (!body) throw new Error('the body of a streamed response is not buffered; middleware can read status and headers only')
    return body
  }
  return {
    status,
    headers: headerObject(rawHeaders.map(([n, v]) => [n, v])),
    rawHeaders,
    get body() {
      return bytes()
    },
    text: () => decoder.decode(bytes()),
    json: () => JSON.parse(decoder.decode(bytes())) as unknown,
    elapsedMs,
    [SOURCE]: source,
  }
}

function isChainResponse(value: unknown): value is ChainResponse {
  return typeof value === 'object' && value !== null && SOURCE in value
}

function isPlainSynthetic(value: unknown): value is { status: number } {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype && typeof (value as { status?: unknown }).status === 'number'
}

/**
 * What a failed chain becomes: errors of the request itself (from `next()`) as they are; a
 * CapsuleHostError a middleware threw keeps its code, credited to the middleware; anything else is
 * a host bug the capsule sees as an internal error, without detail.
 */
function middlewareFailure(error: unknown, fromNext: WeakSet<object>): CapsuleHostError {
  if (isCapsuleHostError(error)) {
    if (fromNext.has(error) || error.decidedBy) return error
    return new CapsuleHostError(error.code, error.message, {
      cause: error,
      decidedBy: 'middleware',
      reason: error.reason ?? error.message,
      ...(error.phase ? { phase: error.phase } : {}),
    })
  }
  return new CapsuleHostError('network', 'internal error in host middleware', { cause: error })
}

/** Runs the chain for one hop and turns what it answered into the head the capsule gets. */
export async function runMiddlewareHop(hop: MiddlewareHop): Promise<HopOutcome> {
  const started = performance.now()
  let url = hop.url
  const headers: Record<string, string> = headerObject(hop.headers)
  let body = hop.body
  let upstreamHead: ResponseHead | undefined
  let sentUrl = hop.url
  /** Set once the chain has answered: a late `next()` must not send, and a late response is dropped. */
  let settled = false
  const fromNext = new WeakSet<object>()

  const req: MiddlewareRequest = {
    capsuleId: hop.capsuleId,
    hop: hop.hop,
    raw: hop.raw,
    params: Object.freeze({ ...(hop.decision.params ?? {}) }),
    method: hop.method,
    get url() {
      return url.href
    },
    setUrl(next: string) {
      url = normaliseUrl(next)
    },
    headers,
    header(name: string, value: string | undefined) {
      const key = name.toLowerCase()
      if (value === undefined) delete headers[key]
      else headers[key] = value
    },
    get body() {
      return body
    },
    setBody(next: string | Uint8Array | undefined) {
      body = typeof next === 'string' ? encoder.encode(next) : next
    },
  }

  const terminal = async (): Promise<ChainResponse> => {
    try {
      return await send()
    } catch (error) {
      if (typeof error === 'object' && error !== null) fromNext.add(error)
      throw error
    }
  }
  /** Runs while middleware code runs: stopped while the request is inside `next()`. */
  const clock = new HostClock(hop.budget, 'middleware')
  const send = async (): Promise<ChainResponse> => {
    clock.pause()
    try {
      return await sendNow()
    } finally {
      clock.resume()
    }
  }
  const sendNow = async (): Promise<ChainResponse> => {
    if (settled) throw new Error('next() called after the middleware chain had answered')
    // A URL middleware changed is judged again, as if the capsule had asked for it.
    const address = url.href === hop.url.href ? hop.address : await hop.admit(url)
    let list: HeaderList
    try {
      list = checkRequestHeaders(Object.entries(headers))
    } catch (cause) {
      throw new CapsuleHostError('network', 'internal error in host middleware', { cause })
    }
    sentUrl = url
    const head = await hop.dispatch(url, address, hop.method, list, body)
    if (settled) {
      head.body.cancel()
      throw new Error('the middleware chain answered before this response arrived')
    }
    upstreamHead = head
    const bytes = hop.mode === 'buffered' ? await readAll(head.body) : undefined
    return chainResponse(head.status, head.rawHeaders, bytes, performance.now() - started, { kind: 'upstream', head })
  }

  const normalise = (result: unknown, fromNext: MiddlewareResponse | undefined): ChainResponse => {
    const elapsed = performance.now() - started
    if (isChainResponse(result)) return result
    if (result instanceof SyntheticResponse || (fromNext === undefined && isPlainSynthetic(result))) {
      const synthetic = result instanceof SyntheticResponse ? result : respond(result as Parameters<typeof respond>[0])
      return chainResponse(synthetic.status, Object.entries(synthetic.headers), synthetic.body, elapsed, { kind: 'synthetic' })
    }
    if (result === undefined) {
      if (fromNext) return fromNext as ChainResponse
      throw new Error('a middleware returned nothing and never called next(); return respond({ status }) to answer')
    }
    if (!fromNext) throw new Error('a middleware returned a value without calling next(); use respond() for a synthetic response')
    // The value replaces the body of the response next() gave; headers that described that body go.
    const text = JSON.stringify(result) as string | undefined
    if (text === undefined) throw new Error('a middleware returned a value that has no JSON form (a function or a symbol)')
    const json = encoder.encode(text)
    const rawHeaders = fromNext.rawHeaders.filter(([name]) => name !== 'content-length' && name !== 'content-type')
    return chainResponse(fromNext.status, [...rawHeaders, ['content-type', 'application/json']], json, elapsed, { kind: 'json', value: result })
  }

  let final: ChainResponse
  try {
    // A chain that does not answer in time is given up; its late next() or answer is dropped.
    final = (await Promise.race([runChain(hop.chain, { req }, terminal, normalise), clock.expired])) as ChainResponse
  } catch (error) {
    upstreamHead?.body.cancel()
    throw middlewareFailure(error, fromNext)
  } finally {
    settled = true
    clock.stop()
  }
  const source = final[SOURCE]
  if (source.kind === 'upstream') {
    // A streamed upstream body is handed on unread; a buffered one was read for the middleware.
    const head = hop.mode === 'stream' ? source.head : { status: final.status, rawHeaders: [...final.rawHeaders] as HeaderList, body: memoryReader(final.body) }
    return { head, upstream: true, sentUrl }
  }
  upstreamHead?.body.cancel()
  const head: ResponseHead = { status: final.status, rawHeaders: final.rawHeaders.map(([n, v]) => [n, v]), body: memoryReader(final.body) }
  return source.kind === 'json' ? { head, upstream: false, json: { value: source.value }, sentUrl } : { head, upstream: false, sentUrl }
}
