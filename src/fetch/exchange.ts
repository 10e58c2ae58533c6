// Runs a prepared request hop by hop: admit, dispatch pinned, and follow redirects only when asked.
import type { Dispatcher } from 'undici'
import { CapsuleHostError } from '../errors.js'
import { dispatchHop, type ResponseHead } from '../net/dispatch-hop.js'
import { REDIRECT_STATUSES, redirectedRequest, type RedirectedRequest } from '../net/redirects.js'
import { redactedUrl, resolveLocation, type NormalisedUrl } from '../url/normalise.js'
import { admitHop, type Admission } from './admit.js'
import { runMiddlewareHop, type HopOutcome } from './middleware-hop.js'
import type { PreparedRequest } from './prepare.js'

export interface ExchangeResult {
  readonly head: ResponseHead
  /** Set when middleware answered with a value: `bodyEncoding: "json"`. */
  readonly json?: { readonly value: unknown }
  readonly finalUrl: NormalisedUrl
  readonly redirects: number
  /** The rule, policy or gate that allowed the last hop. */
  readonly decidedBy: string
  /** The class of the address the last hop dialled. */
  readonly addressClass: string
}

function locationOf(head: ResponseHead): string | undefined {
  return REDIRECT_STATUSES.has(head.status) ? head.rawHeaders.find(([name]) => name === 'location')?.[1] : undefined
}

function nextUrl(location: string, from: NormalisedUrl, hop: number): NormalisedUrl {
  try {
    return resolveLocation(location, from)
  } catch (error) {
    throw new CapsuleHostError('redirect_denied', `redirect hop ${hop} is refused: ${(error as Error).message}`, {
      cause: error,
      decidedBy: 'validation',
      reason: `redirect hop ${hop}: ${(error as Error).message}`,
    })
  }
}

/** Admits a redirect hop; a gate's refusal becomes `redirect_denied`, address errors keep their code. */
async function admitRedirect(url: NormalisedUrl, method: string, admission: Admission, context: Parameters<typeof admitHop>[3]) {
  try {
    return await admitHop(url, method, admission, context)
  } catch (error) {
    if (error instanceof CapsuleHostError && error.code === 'denied') {
      throw new CapsuleHostError('redirect_denied', `redirect hop ${context.hop} is refused: ${error.message}`, {
        cause: error,
        ...(error.decidedBy ? { decidedBy: error.decidedBy } : {}),
        reason: `redirect hop ${context.hop}: ${error.reason ?? error.message}`,
      })
    }
    throw error
  }
}

/** Each host step's budget on a hop: `hostTimeoutMs`, never past the request's deadline. */
export function hostBudget(limits: PreparedRequest['limits'], deadline: number) {
  return { hostTimeoutMs: limits.hostTimeoutMs, deadline, totalTimeoutMs: limits.totalTimeoutMs }
}

/**
 * Sends `prepared` and returns the final response head with its unread body. Every hop passes
 * the gates, one resolution and the address check again, and is pinned to its own address.
 */
export async function exchange(
  prepared: PreparedRequest,
  capsuleId: string,
  dispatcher: Dispatcher,
  admission: Admission,
  signal: AbortSignal | undefined,
  deadline: number,
): Promise<ExchangeResult> {
  const { limits } = prepared
  const seen = new Set<string>()
  let url = prepared.url
  let request: RedirectedRequest = prepared
  for (let hop = 0; ; hop++) {
    // One connect budget per hop: resolution, TCP and TLS together.
    const connectDeadline = performance.now() + limits.connectTimeoutMs
    const context = { capsuleId, hop, signal, resolveTimeoutMs: limits.connectTimeoutMs, ...hostBudget(limits, deadline) }
    const { checked, decision } =
      hop === 0 ? await admitHop(url, request.method, admission, context) : await admitRedirect(url, request.method, admission, context)
    seen.add(`${request.method} ${url.href}`)
    const hopLimits = { ...limits, connectDeadline, deadline }
    const chain = [...admission.middleware, ...(decision.middleware ?? [])]
    const current = request
    const outcome: HopOutcome =
      chain.length === 0
        ? {
            head: await dispatchHop(dispatcher, { url, address: checked.pinned, ...current }, hopLimits, signal),
            upstream: true,
            sentUrl: url,
          }
        : await runMiddlewareHop({
            chain,
            mode: prepared.mode,
            capsuleId,
            hop,
            raw: prepared.raw,
            decision,
            url,
            method: current.method,
            headers: current.headers,
            body: current.body,
            address: checked.pinned,
            limits: hopLimits,
            budget: context,
            admit: async (rewritten) => (await admitHop(rewritten, current.method, admission, context)).checked.pinned,
            dispatch: (target, address, method, headers, body) =>
              dispatchHop(dispatcher, { url: target, address, method, headers, body }, { ...hopLimits, connectDeadline: performance.now() + limits.connectTimeoutMs }, signal),
          })
    const { head } = outcome
    const location = outcome.upstream ? locationOf(head) : undefined
    if (location === undefined || prepared.redirect === 'manual') {
      return {
        head,
        ...(outcome.json ? { json: outcome.json } : {}),
        finalUrl: url,
        redirects: hop,
        decidedBy: decision.decidedBy,
        addressClass: checked.pinned.class,
      }
    }
    head.body.cancel()
    if (prepared.redirect === 'error') {
      throw new CapsuleHostError('redirect_denied', `the response is a ${head.status} redirect and options.redirect is "error"`, {
        decidedBy: 'request options',
      })
    }
    if (hop >= limits.maxRedirects) {
      throw new CapsuleHostError('too_many_redirects', `more than ${limits.maxRedirects} redirects (the limit for this request)`)
    }
    const next = nextUrl(location, outcome.sentUrl, hop + 1)
    request = redirectedRequest(head.status, url, next, request)
    if (seen.has(`${request.method} ${next.href}`)) {
      throw new CapsuleHostError('too_many_redirects', `redirect loop: ${redactedUrl(next)} was already visited`, { reason: 'redirect loop' })
    }
    url = next
  }
}
