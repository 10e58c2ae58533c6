// Admits one hop: gates on the name, then one resolution checked against the address policy; explain() is this step alone.
import { CapsuleHostError, isCapsuleHostError } from '../errors.js'
import { decide, decideByRules, RESOLUTION_ERRORS, type Gatekeeper } from '../gate/decide.js'
import type { Decision, GateRequest, Refused } from '../gate/types.js'
import type { AddressPolicy } from '../net/address-policy.js'
import type { ClassifiedAddress } from '../net/classify.js'
import { checkAddresses, resolveAddresses, type CheckedAddresses, type Resolver } from '../net/resolve.js'
import { redactedUrl, type NormalisedUrl } from '../url/normalise.js'
import type { Middleware } from '../middleware/types.js'
import type { Capabilities } from '../gate/capabilities.js'
import { withinHostTime, type HostBudget } from './host-deadline.js'

export interface Admission {
  readonly keeper: Gatekeeper
  readonly resolver: Resolver
  readonly addressPolicy: AddressPolicy
  /** Global middleware, run first on every hop. */
  readonly middleware: readonly Middleware[]
}

/** One hop's facts for admission; as a HostBudget it bounds each gate and the policy. */
export interface HopContext extends HostBudget {
  readonly capsuleId: string
  /** What the capsule's manifest declared (its session's), if it has one. */
  readonly capabilities: Capabilities | undefined
  readonly hop: number
  /** Bounds name resolution. */
  readonly resolveTimeoutMs: number
  /** Runs once the hop is allowed, before its name is resolved (the hop's quotas); throws to refuse it. */
  readonly onAllowed?: ((url: NormalisedUrl, hop: number) => Promise<void>) | undefined
}

/** What one hop asks for: the URL judged and sent, and the capsule's own view of it for messages. */
export interface HopTarget {
  readonly url: NormalisedUrl
  readonly method: string
  /** The URL as the capsule knows it: its own, or a redirect resolved from its own. Messages name this one. */
  readonly shown: NormalisedUrl
}

/**
 * A hop's admission: the decision (undefined when it could not be reached: a `resolve()` a gate or
 * the policy called failed), the addresses when resolved, the pinned address when admitted, and
 * otherwise the error the request fails with.
 */
export interface AdmitOutcome {
  readonly decision: Decision | undefined
  readonly addresses?: readonly ClassifiedAddress[]
  readonly pinned?: ClassifiedAddress
  readonly error?: CapsuleHostError
  /** The time resolution took: resolution, TCP and TLS share the hop's `connectTimeoutMs`. */
  readonly resolutionMs?: number
}

/** The capsule's message for a refusal: its own URL, and the detail only when the URL is its own. */
function refusalMessage(target: HopTarget, reason: string, detail: string, hop: number): string {
  // A host callback's failure is its author's to read (in the audit log and onError), never the capsule's.
  const own = target.url.href === target.shown.href && reason !== 'a gate failed' && reason !== 'the policy failed'
  const what = own ? detail : target.url.href === target.shown.href ? reason : `the URL set by host middleware was refused (${reason})`
  const message = `${target.method} ${redactedUrl(target.shown)} is not allowed: ${what}`
  return hop === 0 ? message : `redirect hop ${hop} is refused: ${message}`
}

function refusalError(verdict: Refused, target: HopTarget, hop: number): CapsuleHostError {
  const { decidedBy, detail } = verdict
  if (verdict.code === 'timeout') return new CapsuleHostError('timeout', detail, { phase: 'host', decidedBy, detail })
  return new CapsuleHostError(hop === 0 ? 'denied' : 'redirect_denied', refusalMessage(target, verdict.reason, detail, hop), { decidedBy, detail })
}

const SHOWN_FAILURES: Partial<Record<string, string>> = {
  blocked_address: 'resolves to a blocked address',
  dns_failed: 'could not be resolved',
  timeout: 'could not be resolved in time',
}

/** A resolution error as the capsule sees it: for a URL host middleware set, named by the capsule's own URL. */
function shownError(error: CapsuleHostError, target: HopTarget): CapsuleHostError {
  const what = SHOWN_FAILURES[error.code]
  if (target.url.href === target.shown.href || what === undefined) return error
  return new CapsuleHostError(error.code, `the URL set by host middleware for ${redactedUrl(target.shown)} ${what}`, {
    cause: error,
    detail: error.detail ?? error.message,
    ...(error.phase ? { phase: error.phase } : {}),
    ...(error.addressClass ? { addressClass: error.addressClass } : {}),
  })
}

/** The address policy's refusal as a decision. */
function blockedOutcome(error: CapsuleHostError, target: HopTarget, addresses?: readonly ClassifiedAddress[]): AdmitOutcome {
  const decision: Refused = { allowed: false, decidedBy: 'address-policy', reason: 'blocked address', detail: error.detail ?? error.message }
  return { decision, ...(addresses ? { addresses } : {}), error: shownError(error, target) }
}

/**
 * One hop's resolution, started at most once: by a gate or the policy calling `resolve()`, or
 * by the terminal after the gates allowed. Both see the same checked answer.
 */
class HopResolution {
  #answer: Promise<ClassifiedAddress[]> | undefined
  constructor(
    private readonly url: NormalisedUrl,
    private readonly admission: Admission,
    private readonly context: HopContext,
  ) {}

  /** How long the resolution took (0 until it ended), out of the hop's connect budget. */
  spentMs = 0

  /** Every address of the answer, classified; the resolver is asked on the first call only. */
  addresses(): Promise<ClassifiedAddress[]> {
    if (!this.#answer) {
      const started = performance.now()
      this.#answer = resolveAddresses(this.url, this.admission.resolver, this.context.resolveTimeoutMs, this.context.signal)
      const ended = () => (this.spentMs = performance.now() - started)
      this.#answer.then(ended, ended)
    }
    return this.#answer
  }

  async checked(): Promise<CheckedAddresses> {
    return checkAddresses(this.url, await this.addresses(), this.admission.addressPolicy)
  }
}

export function gateRequest(url: NormalisedUrl, method: string, context: HopContext, resolution: HopResolution): GateRequest {
  return {
    capsuleId: context.capsuleId,
    url: url.href,
    scheme: url.protocol === 'https:' ? 'https' : 'http',
    host: url.hostname,
    port: url.port,
    path: url.path,
    method,
    hop: context.hop,
    resolve: async () => {
      try {
        return (await resolution.checked()).addresses.map((a) => a.address)
      } catch (error) {
        if (typeof error === 'object' && error !== null) RESOLUTION_ERRORS.add(error)
        throw error
      }
    },
  }
}

/** The gates' decision; a `resolve()` a gate or the policy called can make it throw (blocked, dns_failed). */
function decideHop(request: GateRequest, admission: Admission, context: HopContext): Promise<Decision> {
  return decide(admission.keeper, request, context.capabilities, (step, work) => withinHostTime(context, step, work))
}

/**
 * Admits one hop: the gates' decision, then one resolution checked against the address policy.
 * Never throws: `explain()` shows the outcome, the pipeline records it and fails with its error.
 */
export async function admit(target: HopTarget, admission: Admission, context: HopContext): Promise<AdmitOutcome> {
  const resolution = new HopResolution(target.url, admission, context)
  let decision: Decision
  try {
    const request = gateRequest(target.url, target.method, context, resolution)
    // Rules alone decide without an async step; the policy and gates are asked under their clocks.
    decision = decideByRules(admission.keeper, request, context.capabilities) ?? (await decideHop(request, admission, context))
  } catch (error) {
    const own = isCapsuleHostError(error) ? error : new CapsuleHostError('internal', 'internal error while deciding', { cause: error })
    return own.code === 'blocked_address' ? blockedOutcome(own, target) : { decision: undefined, error: shownError(own, target) }
  }
  if (!decision.allowed) return { decision, error: refusalError(decision, target, context.hop) }
  // Awaited only when there is one: an await of undefined still costs a turn of the microtask queue.
  if (context.onAllowed) await context.onAllowed(target.url, context.hop)
  let addresses: ClassifiedAddress[]
  try {
    addresses = await resolution.addresses()
  } catch (error) {
    return { decision, error: isCapsuleHostError(error) ? shownError(error, target) : new CapsuleHostError('internal', 'internal error while resolving', { cause: error }) }
  }
  try {
    return { decision, addresses, pinned: checkAddresses(target.url, addresses, admission.addressPolicy).pinned, resolutionMs: resolution.spentMs }
  } catch (error) {
    return blockedOutcome(error as CapsuleHostError, target, addresses)
  }
}
