// Runs the gates in order (rules or policy, then host gates) and returns one decision; fails closed.
import { isCapsuleHostError } from '../errors.js'
import { isHostTimeout } from '../fetch/host-deadline.js'
import { matchRequest, type CompiledRule } from './rules.js'
import type { Capabilities } from './capabilities.js'
import type { Decision, GateRequest, SecurityGate } from './types.js'

/** What the policy callback sees: the request's name-level facts and a lazy, checked `resolve()`. */
export interface PolicyRequest {
  readonly capsuleId: string
  readonly host: string
  readonly method: string
  readonly url: string
  readonly port: number
  readonly scheme: 'http' | 'https'
  readonly path: string
  resolve(): Promise<readonly string[]>
}

/** Decides requests no origin rule matched. Only `true` allows; anything else denies. */
export type Policy = (request: PolicyRequest) => boolean | Promise<boolean>

/**
 * Runs one host callback under its deadline, naming the step (`policy`, `gate:<name>`). It rejects
 * with a `timeout` CapsuleHostError of phase `host` when the callback does not answer in time.
 */
export type HostCall = <T>(step: string, work: () => T | PromiseLike<T>) => Promise<T>

/** No deadline: for callers that bound the whole decision themselves. */
const untimed: HostCall = async (_step, work) => work()

/** A step that ran out of time is a refusal by that step, as data. */
function timedOut(decidedBy: string, error: unknown): Decision | undefined {
  if (!isHostTimeout(error)) return undefined
  return { allowed: false, decidedBy, reason: error.message, code: 'timeout' }
}

export interface Gatekeeper {
  readonly rules: readonly CompiledRule[]
  readonly policy: Policy | undefined
  readonly gates: readonly SecurityGate[]
}

/** A check that threw: errors raised by `resolve()` keep their code; anything else denies. */
function rethrowIfCoded(error: unknown): void {
  if (isCapsuleHostError(error)) throw error
}

async function accessDecision(keeper: Gatekeeper, request: GateRequest, within: HostCall): Promise<Decision | undefined> {
  if (keeper.rules.length === 0 && !keeper.policy) return undefined
  const match = matchRequest(keeper.rules, request)
  if (match.allowed) {
    const middleware = [...match.rule.middleware, ...(match.route?.middleware ?? [])]
    return {
      allowed: true,
      decidedBy: match.route ? `${match.rule.label} ${match.route.path}` : match.rule.label,
      ...(middleware.length > 0 ? { middleware } : {}),
      ...(match.route ? { params: match.params } : {}),
    }
  }
  // An origin rule that matched decides alone: its routes refused the path, so the policy is not asked.
  if (match.rule) return { allowed: false, decidedBy: match.rule.label, reason: match.reason }
  if (!keeper.policy) return { allowed: false, decidedBy: 'rules', reason: match.reason }
  let verdict: unknown
  try {
    const { capsuleId, host, method, url, port, scheme, path, resolve } = request
    const policy = keeper.policy
    verdict = await within('policy', () => policy({ capsuleId, host, method, url, port, scheme, path, resolve }))
  } catch (error) {
    const late = timedOut('policy', error)
    if (late) return late
    rethrowIfCoded(error)
    return { allowed: false, decidedBy: 'policy', reason: 'the policy failed' }
  }
  return verdict === true
    ? { allowed: true, decidedBy: 'policy' }
    : { allowed: false, decidedBy: 'policy', reason: 'the policy refused the request' }
}

async function gateDecision(gate: SecurityGate, request: GateRequest, within: HostCall): Promise<Decision> {
  const decidedBy = `gate:${gate.name}`
  try {
    const verdict = await within(decidedBy, () => gate.check(request))
    if (verdict?.allow === true) return { allowed: true, decidedBy }
    const reason = typeof verdict?.reason === 'string' && verdict.reason !== '' ? verdict.reason : 'refused'
    return { allowed: false, decidedBy, reason }
  } catch (error) {
    const late = timedOut(decidedBy, error)
    if (late) return late
    rethrowIfCoded(error)
    return { allowed: false, decidedBy, reason: `gate ${gate.name} failed` }
  }
}

/**
 * All configured checks must allow, in order: the capsule's manifest capabilities, rules or
 * policy, host gates. With no rules, no policy and no gates, everything is denied.
 * An allow is credited to the rule (or policy) that matched, else to the gates. `within` bounds
 * each host callback (the policy, each gate); one that runs out of time refuses with `code: 'timeout'`.
 */
export async function decide(
  keeper: Gatekeeper,
  request: GateRequest,
  capabilities?: Capabilities,
  within: HostCall = untimed,
): Promise<Decision> {
  // The capsule's manifest narrows what the host allows and never widens it. It is checked first,
  // on the name alone, so a policy that resolves never looks up a name the capsule did not declare.
  const declared = capabilities?.check(request)
  if (declared && !declared.allow) return { allowed: false, decidedBy: 'manifest', reason: declared.reason }
  const access = await accessDecision(keeper, request, within)
  if (access && !access.allowed) return access
  if (!access && keeper.gates.length === 0) {
    return { allowed: false, decidedBy: 'default', reason: 'no rule, policy or gate is configured, so nothing is allowed' }
  }
  for (const gate of keeper.gates) {
    const verdict = await gateDecision(gate, request, within)
    if (!verdict.allowed) return verdict
  }
  return access ?? { allowed: true, decidedBy: 'gates' }
}
