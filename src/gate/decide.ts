// Runs the gates in order (rules or policy, then host gates) and returns one decision; fails closed.
import { isCapsuleHostError } from '../errors.js'
import { safeText } from '../safe-text.js'
import { isHostTimeout, isStepCancellation } from '../fetch/host-deadline.js'
import { matchRequest, type CompiledRule, type RequestMatch } from './rules.js'
import type { Capabilities } from './capabilities.js'
import type { Decider, Decision, GateRequest, SecurityGate } from './types.js'

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
function timedOut(decidedBy: Decider, error: unknown): Decision | undefined {
  if (!isHostTimeout(error)) return undefined
  return { allowed: false, decidedBy, reason: 'a host step did not answer in time', detail: error.message, code: 'timeout' }
}

export interface Gatekeeper {
  readonly rules: readonly CompiledRule[]
  readonly policy: Policy | undefined
  readonly gates: readonly SecurityGate[]
}

/** A short host-side description of what a host callback threw. */
function describeThrown(error: unknown): string {
  return safeText(error instanceof Error ? `${error.name}: ${error.message}` : String(error), 512)
}

/** Errors `GateRequest.resolve()` raised (blocked_address, dns_failed, ...), so a check that threw one passes it on. */
export const RESOLUTION_ERRORS = new WeakSet<object>()

/**
 * A check that threw: errors raised by `resolve()` keep their code, and so does the cancellation
 * of a step the request stopped waiting for (the capsule was released); anything else denies.
 */
function rethrowIfResolution(error: unknown): void {
  if (isCapsuleHostError(error) && (RESOLUTION_ERRORS.has(error) || isStepCancellation(error))) throw error
}

async function accessDecision(keeper: Gatekeeper, request: GateRequest, within: HostCall): Promise<Decision | undefined> {
  if (keeper.rules.length === 0 && !keeper.policy) return undefined
  const match = matchRequest(keeper.rules, request)
  // An origin rule that matched decides alone: its routes refused the path, so the policy is not asked.
  if (match.allowed || match.rule || !keeper.policy) return ruleDecision(match)
  let verdict: unknown
  try {
    const { capsuleId, host, method, url, port, scheme, path, resolve } = request
    const policy = keeper.policy
    verdict = await within('policy', () => policy({ capsuleId, host, method, url, port, scheme, path, resolve }))
  } catch (error) {
    const late = timedOut('policy', error)
    if (late) return late
    rethrowIfResolution(error)
    return { allowed: false, decidedBy: 'policy', reason: 'the policy failed', detail: `the policy threw: ${describeThrown(error)}`, thrown: error }
  }
  return verdict === true
    ? { allowed: true, decidedBy: 'policy' }
    : { allowed: false, decidedBy: 'policy', reason: 'refused by the policy', detail: 'the policy refused the request' }
}

async function gateDecision(gate: SecurityGate, request: GateRequest, within: HostCall): Promise<Decision> {
  const decidedBy: Decider = `gate:${gate.name}`
  try {
    const verdict = await within(decidedBy, () => gate.check(request))
    if (verdict?.allow === true) return { allowed: true, decidedBy }
    const detail = typeof verdict?.reason === 'string' && verdict.reason !== '' ? verdict.reason : 'refused'
    return { allowed: false, decidedBy, reason: 'refused by a gate', detail }
  } catch (error) {
    const late = timedOut(decidedBy, error)
    if (late) return late
    rethrowIfResolution(error)
    return { allowed: false, decidedBy, reason: 'a gate failed', detail: `gate ${gate.name} threw: ${describeThrown(error)}`, thrown: error }
  }
}

/**
 * The decision when no host callback has a say: no host gates, and the rules decide alone (one
 * matched, or none did and there is no policy). `undefined` when the policy or a gate must be
 * asked: then `decide()` runs. Synchronous, so a rules-only request takes no async step here.
 */
export function decideByRules(keeper: Gatekeeper, request: GateRequest, capabilities?: Capabilities): Decision | undefined {
  if (keeper.gates.length > 0 || keeper.rules.length === 0) return undefined
  const undeclared = capabilities?.undeclared(request)
  if (undeclared) return { allowed: false, decidedBy: 'manifest', reason: 'not declared in the manifest', detail: undeclared }
  const match = matchRequest(keeper.rules, request)
  if (!match.allowed && !match.rule && keeper.policy) return undefined
  return ruleDecision(match)
}

/** What a rule match decides (an origin that matched with no route matching refuses alone). */
function ruleDecision(match: RequestMatch): Decision {
  if (match.allowed) {
    const middleware = [...match.rule.middleware, ...(match.route?.middleware ?? [])]
    return {
      allowed: true,
      decidedBy: match.rule.decider,
      ...(middleware.length > 0 ? { middleware } : {}),
      ...(match.route ? { route: match.route.path, params: match.params } : {}),
    }
  }
  return { allowed: false, decidedBy: match.rule ? match.rule.decider : 'rules', reason: match.reason, detail: match.detail }
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
  const undeclared = capabilities?.undeclared(request)
  if (undeclared) return { allowed: false, decidedBy: 'manifest', reason: 'not declared in the manifest', detail: undeclared }
  const access = await accessDecision(keeper, request, within)
  if (access && !access.allowed) return access
  if (!access && keeper.gates.length === 0) {
    return { allowed: false, decidedBy: 'default', reason: 'nothing is configured', detail: 'no rule, policy or gate is configured, so nothing is allowed' }
  }
  for (const gate of keeper.gates) {
    const verdict = await gateDecision(gate, request, within)
    if (!verdict.allowed) return verdict
  }
  return access ?? { allowed: true, decidedBy: 'gates' }
}
