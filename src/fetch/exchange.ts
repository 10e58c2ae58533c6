// Runs a prepared request hop by hop: admit, dispatch pinned, and follow redirects only when asked.
import type { Dispatcher } from 'undici'
import type { StopSignal } from '../abort-listeners.js'
import { CapsuleHostError } from '../errors.js'
import type { Answer } from '../middleware/results.js'
import { dispatchHop, type HopLimits } from '../net/dispatch-hop.js'
import { REDIRECT_STATUSES, redirectedRequest, type RedirectedRequest } from '../net/redirects.js'
import { redactedUrl, resolveLocation, type NormalisedUrl } from '../url/normalise.js'
import { admit, type Admission, type AdmitOutcome, type HopContext, type HopTarget } from './admit.js'
import { runMiddlewareHop, type HopOutcome } from './middleware-hop.js'
import type { PreparedRequest } from './prepare.js'
import type { RequestSecrets } from './secrets.js'
import type { RequestTrace } from './trace.js'
import type { ClassifiedAddress } from '../net/classify.js'
import type { Allowed } from '../gate/types.js'
import type { Capabilities } from '../gate/capabilities.js'

/** One request on its way: what it runs on, and where its facts and secrets go. */
export interface Exchange {
  readonly prepared: PreparedRequest
  readonly capsuleId: string
  readonly capabilities: Capabilities | undefined
  readonly dispatcher: Dispatcher
  readonly admission: Admission
  readonly signal: StopSignal | undefined
  /** The request's total deadline (performance.now() time). */
  readonly deadline: number
  readonly trace: RequestTrace
  readonly secrets: RequestSecrets
  /** Runs once a hop is allowed, before its name is resolved (its quotas); throws to refuse the hop. */
  readonly onAllowed?: ((url: NormalisedUrl, hop: number) => Promise<void>) | undefined
}

export interface ExchangeResult {
  readonly answer: Answer
  /** The capsule's view of the last hop's URL (never one middleware set). */
  readonly finalUrl: NormalisedUrl
  readonly redirects: number
}

function locationOf(answer: Answer): string | undefined {
  return answer.upstream && REDIRECT_STATUSES.has(answer.status) ? answer.rawHeaders.find(([name]) => name === 'location')?.[1] : undefined
}

function nextUrl(location: string, from: NormalisedUrl, hop: number, trace: RequestTrace): NormalisedUrl {
  try {
    return resolveLocation(location, from)
  } catch (error) {
    const message = `redirect hop ${hop} is refused: ${(error as Error).message}`
    trace.refusedBy('validation', 'invalid redirect', message)
    throw new CapsuleHostError('redirect_denied', message, { cause: error, decidedBy: 'validation' })
  }
}

/** A hop's admission and the address to dial; records the decision and throws a refusal. */
function admitted(exchange: Exchange, outcome: AdmitOutcome, context: HopContext, rewrite: boolean): { decision: Allowed; pinned: ClassifiedAddress; resolutionMs: number } {
  exchange.trace.admission(outcome, context.hop, rewrite)
  if (outcome.error || !outcome.decision?.allowed || !outcome.pinned) throw outcome.error ?? new Error('admission gave neither an address nor an error')
  exchange.trace.dialled(outcome.pinned.class)
  return { decision: outcome.decision, pinned: outcome.pinned, resolutionMs: outcome.resolutionMs ?? 0 }
}

/** Each host step's budget on a hop: `hostTimeoutMs`, never past the request's deadline. */
export function hostBudget(limits: PreparedRequest['limits'], deadline: number) {
  return { hostTimeoutMs: limits.hostTimeoutMs, deadline, totalTimeoutMs: limits.totalTimeoutMs }
}
/** Runs one hop: straight to the transport, or through the middleware chain around it. */
async function runHop(exchange: Exchange, target: HopTarget, request: RedirectedRequest, context: HopContext): Promise<HopOutcome> {
  const { prepared, admission, dispatcher, signal } = exchange
  const { limits } = prepared
  const { decision, pinned, resolutionMs } = admitted(exchange, await admit(target, admission, context), context, false)
  // One connect budget per hop: resolution, TCP and TLS share it; the time of gates, the policy
  // and middleware in between is not part of it (the same with and without middleware).
  const connectDeadline = () => performance.now() + limits.connectTimeoutMs - resolutionMs
  const hopLimits: HopLimits = {
    connectTimeoutMs: limits.connectTimeoutMs,
    connectDeadline: connectDeadline(),
    firstByteTimeoutMs: limits.firstByteTimeoutMs,
    idleTimeoutMs: limits.idleTimeoutMs,
    maxBodyBytes: limits.maxBodyBytes,
  }
  const { url } = target
  if (admission.middleware.length === 0 && decision.middleware === undefined) {
    const hop = { url, shown: target.shown, address: pinned, method: request.method, headers: request.headers, body: request.body }
    const head = await dispatchHop(dispatcher, hop, hopLimits, signal)
    return { answer: { status: head.status, rawHeaders: head.rawHeaders, body: { stream: head.body }, upstream: true }, sentUrl: url }
  }
  return runMiddlewareHop({
    chain: [...admission.middleware, ...(decision.middleware ?? [])],
    kind: prepared.mode === 'buffered' ? 'request' : 'stream',
    capsuleId: exchange.capsuleId,
    hop: context.hop,
    raw: prepared.raw,
    decision,
    url,
    method: request.method,
    headers: request.headers,
    body: request.body,
    address: pinned,
    budget: context,
    secrets: exchange.secrets,
    trace: exchange.trace,
    admit: async (rewritten) => admitted(exchange, await admit({ url: rewritten, method: request.method, shown: target.shown }, admission, context), context, true).pinned,
    dispatch: (to, address, method, headers, body) =>
      dispatchHop(dispatcher, { url: to, shown: target.shown, address, method, headers, body }, { ...hopLimits, connectDeadline: connectDeadline() }, signal),
  })
}

/** The next hop's URL, as sent and as the capsule knows it (a relative Location resolves against each). */
function redirectTarget(exchange: Exchange, location: string, sentUrl: NormalisedUrl, shown: NormalisedUrl, hop: number) {
  const url = nextUrl(location, sentUrl, hop, exchange.trace)
  let next = url
  if (sentUrl.href !== shown.href) {
    try {
      next = resolveLocation(location, shown)
    } catch {
      next = shown
    }
  }
  return { url, shown: next }
}

/**
 * Sends the request and returns the final answer with its unread body. Every hop passes the
 * gates, one resolution and the address check again, and is pinned to its own address.
 */
export async function exchange(exchange: Exchange): Promise<ExchangeResult> {
  const { prepared, trace } = exchange
  const { limits } = prepared
  // The hops visited, for loop detection: made at the first redirect.
  let seen: Set<string> | undefined
  let target: HopTarget = { url: prepared.url, method: prepared.method, shown: prepared.url }
  let request: RedirectedRequest = prepared
  for (let hop = 0; ; hop++) {
    const context: HopContext = {
      capsuleId: exchange.capsuleId,
      capabilities: exchange.capabilities,
      hop,
      signal: exchange.signal,
      resolveTimeoutMs: limits.connectTimeoutMs,
      onAllowed: exchange.onAllowed,
      ...hostBudget(limits, exchange.deadline),
    }
    const { answer, sentUrl } = await runHop(exchange, target, request, context)
    trace.followed(hop)
    const location = locationOf(answer)
    if (location === undefined || prepared.redirect === 'manual') return { answer, finalUrl: target.shown, redirects: hop }
    seen ??= new Set<string>()
    seen.add(`${request.method} ${target.url.href}`)
    if ('stream' in answer.body) answer.body.stream.cancel()
    if (prepared.redirect === 'error') {
      const message = `the response is a ${answer.status} redirect and options.redirect is "error"`
      trace.refusedBy('request-options', 'redirects refused by the request', message)
      throw new CapsuleHostError('redirect_denied', message, { decidedBy: 'request-options' })
    }
    if (hop >= limits.maxRedirects) {
      throw new CapsuleHostError('too_many_redirects', `more than ${limits.maxRedirects} redirects (the limit for this request)`)
    }
    const next = redirectTarget(exchange, location, sentUrl, target.shown, hop + 1)
    request = redirectedRequest(answer.status, target.url, next.url, request)
    if (seen.has(`${request.method} ${next.url.href}`)) {
      throw new CapsuleHostError('too_many_redirects', `redirect loop: ${redactedUrl(next.shown)} was already visited`, { detail: 'redirect loop' })
    }
    target = { url: next.url, method: request.method, shown: next.shown }
  }
}
