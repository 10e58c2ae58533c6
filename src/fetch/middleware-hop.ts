// Runs one hop through the middleware chain: the request middleware may change, and the response it settles on.
import { CapsuleHostError, isCapsuleHostError } from '../errors.js'
import type { Allowed } from '../gate/types.js'
import { runChain } from '../middleware/compose.js'
import { answerOf, chainResponse, settle, type Answer, type AnswerBody, type ChainResponse } from '../middleware/results.js'
import type { Middleware, MiddlewareRequest } from '../middleware/types.js'
import { readAll, type ResponseHead } from '../net/dispatch-hop.js'
import { checkRequestHeaders, CREDENTIAL_HEADERS, headerObject, type HeaderList } from '../net/headers.js'
import type { ClassifiedAddress } from '../net/classify.js'
import { HostClock, type HostBudget } from './host-deadline.js'
import { deepFreeze } from '../pure-cache.js'
import { normaliseUrl, type NormalisedUrl } from '../url/normalise.js'
import type { HttpRequest } from '../wire/schemas.js'
import { withSecrets, type RequestSecrets } from './secrets.js'
import type { RequestTrace } from './trace.js'

/** What one hop produced, after middleware. */
export interface HopOutcome {
  readonly answer: Answer
  /** The URL the terminal sent (middleware may have rewritten it); a redirect resolves against it. */
  readonly sentUrl: NormalisedUrl
}

export interface MiddlewareHop {
  readonly chain: readonly Middleware[]
  readonly kind: 'request' | 'stream'
  readonly capsuleId: string
  readonly hop: number
  readonly raw: Readonly<HttpRequest>
  readonly decision: Allowed
  readonly url: NormalisedUrl
  readonly method: string
  /** The hop's headers before middleware: the capsule's own (values middleware sets differently are secrets). */
  readonly headers: HeaderList
  readonly body: Uint8Array | undefined
  readonly address: ClassifiedAddress
  /** Bounds the middleware's own time on this hop (the network inside `next()` is not counted). */
  readonly budget: HostBudget
  readonly secrets: RequestSecrets
  readonly trace: RequestTrace
  /** Judges a URL middleware set: gates, one resolution, the address policy; returns the address to dial. */
  readonly admit: (url: NormalisedUrl) => Promise<ClassifiedAddress>
  readonly dispatch: (url: NormalisedUrl, address: ClassifiedAddress, method: string, headers: HeaderList, body: Uint8Array | undefined) => Promise<ResponseHead>
}

const encoder = new TextEncoder()

/**
 * What a failed chain becomes: errors of the request itself (from `next()`) as they are; a
 * CapsuleHostError a middleware threw keeps its code, decided by the middleware; anything else is
 * a host bug: `internal` to the capsule, with what was thrown kept for the host.
 */
function middlewareFailure(error: unknown, fromNext: WeakSet<object>, trace: RequestTrace): CapsuleHostError {
  if (isCapsuleHostError(error)) {
    if (fromNext.has(error)) return error
    if (error.code === 'denied') trace.refusedBy('middleware', 'refused by middleware', error.message)
    return new CapsuleHostError(error.code, error.message, { cause: error, decidedBy: 'middleware', ...(error.phase ? { phase: error.phase } : {}) })
  }
  const detail = `host middleware failed: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`
  return new CapsuleHostError('internal', 'internal error in host middleware', { cause: error, detail })
}

/**
 * Credential headers the middleware set to a value the capsule did not send are secrets of the
 * request, whatever the case of the name it used (`headers.Authorization = ...` is sent lower-cased).
 */
function collectInjected(headers: Readonly<Record<string, string>>, own: Readonly<Record<string, string>>, secrets: RequestSecrets): void {
  for (const [name, value] of Object.entries(headers)) {
    const key = name.toLowerCase()
    if (CREDENTIAL_HEADERS.has(key) && typeof value === 'string' && value !== own[key]) secrets.addInjectedHeader(key, value, own[key])
  }
}

/** The request as middleware sees and changes it; `state` holds what the terminal will send. */
function middlewareRequest(hop: MiddlewareHop, state: { url: NormalisedUrl; body: Uint8Array | undefined; headers: Record<string, string> }): MiddlewareRequest {
  return {
    capsuleId: hop.capsuleId,
    kind: hop.kind,
    hop: hop.hop,
    // Frozen only now, when middleware will see it: a request without middleware never pays for it.
    raw: deepFreeze(hop.raw),
    params: Object.freeze({ ...(hop.decision.params ?? {}) }),
    method: hop.method,
    get url() {
      return state.url.href
    },
    setUrl(next: string) {
      state.url = normaliseUrl(next)
    },
    headers: state.headers,
    header(name: string, value: string | undefined) {
      const key = name.toLowerCase()
      if (value === undefined) delete state.headers[key]
      else state.headers[key] = value
    },
    get body() {
      return state.body
    },
    setBody(next: string | Uint8Array | undefined) {
      state.body = typeof next === 'string' ? encoder.encode(next) : next
    },
  }
}

/** One hop's chain in progress: what the terminal will send, and what it has sent. */
interface HopRun {
  readonly hop: MiddlewareHop
  readonly started: number
  /** The capsule's own headers (values middleware sets differently are secrets). */
  readonly own: Readonly<Record<string, string>>
  readonly request: { url: NormalisedUrl; body: Uint8Array | undefined; headers: Record<string, string> }
  /** Errors that came out of `next()` (the request's own), passed through as they are. */
  readonly fromNext: WeakSet<object>
  /** Runs while middleware code runs: stopped while the request is inside `next()`. */
  readonly clock: HostClock
  upstream: ResponseHead | undefined
  sentUrl: NormalisedUrl
  /** Set once the chain has answered: a late `next()` must not send, and a late response is dropped. */
  settled: boolean
}

/** The innermost `next()`: judges a rewritten URL again, checks the headers, sends, and reads a buffered body. */
async function send(run: HopRun): Promise<ChainResponse> {
  const { hop, request } = run
  if (run.settled) throw new Error('next() called after the middleware chain had answered')
  collectInjected(request.headers, run.own, hop.secrets)
  // A URL middleware changed is judged again, as if the capsule had asked for it.
  const address = request.url.href === hop.url.href ? hop.address : await hop.admit(request.url)
  let list: HeaderList
  try {
    list = checkRequestHeaders(Object.entries(request.headers))
  } catch (cause) {
    throw new CapsuleHostError('internal', 'internal error in host middleware', { cause, detail: `host middleware set a bad header: ${(cause as Error).message}` })
  }
  run.sentUrl = request.url
  const head = await hop.dispatch(request.url, address, hop.method, list, request.body)
  if (run.settled) {
    head.body.cancel()
    throw new Error('the middleware chain answered before this response arrived')
  }
  run.upstream = head
  let body: AnswerBody = { stream: head.body }
  if (hop.kind === 'request') {
    try {
      body = { content: { kind: 'bytes', bytes: await readAll(head.body) } }
    } finally {
      hop.trace.received(head.body.bytesRead)
    }
  }
  return chainResponse({ status: head.status, rawHeaders: head.rawHeaders, body, upstream: true }, performance.now() - run.started)
}

/** `send` with the host clock paused, its errors marked as the request's own. */
async function terminal(run: HopRun): Promise<ChainResponse> {
  run.clock.pause()
  try {
    return await send(run)
  } catch (error) {
    if (typeof error === 'object' && error !== null) run.fromNext.add(error)
    throw error
  } finally {
    run.clock.resume()
  }
}

/** Runs the chain for one hop and returns the answer it settled on. */
export async function runMiddlewareHop(hop: MiddlewareHop): Promise<HopOutcome> {
  const run: HopRun = {
    hop,
    started: performance.now(),
    own: headerObject(hop.headers),
    request: { url: hop.url, body: hop.body, headers: headerObject(hop.headers) },
    fromNext: new WeakSet<object>(),
    clock: new HostClock(hop.budget, 'middleware'),
    upstream: undefined,
    sentUrl: hop.url,
    settled: false,
  }
  let final: ChainResponse
  try {
    const req = middlewareRequest(hop, run.request)
    const settleOne = (result: unknown, inner: unknown) => settle(result, inner as ChainResponse | undefined, performance.now() - run.started)
    const chain = withSecrets(hop.secrets, () => runChain(hop.chain, { req }, () => terminal(run), settleOne))
    // A chain that does not answer in time is given up; its late next() or answer is dropped.
    final = (await Promise.race([chain, run.clock.expired])) as ChainResponse
  } catch (error) {
    run.upstream?.body.cancel()
    throw middlewareFailure(error, run.fromNext, hop.trace)
  } finally {
    run.settled = true
    run.clock.stop()
    // Credentials set but never sent are secrets too: a synthetic answer, or a middleware's error text, may quote them.
    collectInjected(run.request.headers, run.own, hop.secrets)
  }
  const answer = answerOf(final)
  // An upstream stream the answer does not carry on is stopped now.
  const { upstream } = run
  if (upstream && !('stream' in answer.body && answer.body.stream === upstream.body)) upstream.body.cancel()
  return { answer, sentUrl: run.sentUrl }
}
