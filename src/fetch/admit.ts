// Admits one hop: gates on the name, then one resolution checked against the address policy.
import { CapsuleHostError } from '../errors.js'
import { decide, type Gatekeeper } from '../gate/decide.js'
import type { Decision, GateRequest } from '../gate/types.js'
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
  /** The capabilities a capsule's manifest declared, if it has one. */
  capabilitiesOf(capsuleId: string): Capabilities | undefined
}

/** One hop's facts for admission; as a HostBudget it bounds each gate and the policy. */
export interface HopContext extends HostBudget {
  readonly capsuleId: string
  readonly hop: number
  /** Bounds name resolution. */
  readonly resolveTimeoutMs: number
}

/** Errors that stand for a refusal by the gates (the audit records them as not allowed). */
const gateRefusals = new WeakSet<object>()

/** True when the gates refused: a denial, or a gate or the policy that did not answer in time. */
export function isGateRefusal(error: unknown): boolean {
  return typeof error === 'object' && error !== null && gateRefusals.has(error)
}

function refusal(verdict: Extract<Decision, { allowed: false }>, method: string, url: NormalisedUrl): CapsuleHostError {
  const { decidedBy, reason } = verdict
  const error =
    verdict.code === 'timeout'
      ? new CapsuleHostError('timeout', reason, { phase: 'host', decidedBy, reason })
      : // Messages never repeat the query string: a URL middleware set may carry a secret in it.
        new CapsuleHostError('denied', `${method} ${redactedUrl(url)} is not allowed: ${reason}`, { decidedBy, reason })
  gateRefusals.add(error)
  return error
}

/**
 * One hop's resolution, started at most once: by a gate or the policy calling `resolve()`, or
 * by the terminal after the gates allowed. Both see the same checked answer.
 */
export class HopResolution {
  #answer: Promise<ClassifiedAddress[]> | undefined
  constructor(
    private readonly url: NormalisedUrl,
    private readonly admission: Admission,
    private readonly context: HopContext,
  ) {}

  /** Every address of the answer, classified; the resolver is asked on the first call only. */
  addresses(): Promise<ClassifiedAddress[]> {
    this.#answer ??= resolveAddresses(this.url, this.admission.resolver, this.context.resolveTimeoutMs, this.context.signal)
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
    resolve: async () => (await resolution.checked()).addresses.map((a) => a.address),
  }
}

/** The gates' decision for a hop, without resolving unless a gate asked to. */
export function decideHop(url: NormalisedUrl, method: string, admission: Admission, context: HopContext) {
  const resolution = new HopResolution(url, admission, context)
  const decision: Promise<Decision> = decide(
    admission.keeper,
    gateRequest(url, method, context, resolution),
    admission.capabilitiesOf(context.capsuleId),
    (step, work) => withinHostTime(context, step, work),
  )
  return { decision, resolution }
}

/** Decides a hop and, when it is allowed, returns its checked addresses; otherwise throws `denied` (or `timeout`). */
export async function admitHop(
  url: NormalisedUrl,
  method: string,
  admission: Admission,
  context: HopContext,
): Promise<{ decision: Extract<Decision, { allowed: true }>; checked: CheckedAddresses }> {
  const { decision, resolution } = decideHop(url, method, admission, context)
  const verdict = await decision
  if (!verdict.allowed) throw refusal(verdict, method, url)
  return { decision: verdict, checked: await resolution.checked() }
}
