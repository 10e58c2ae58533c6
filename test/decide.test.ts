// decide(): how rules, the policy callback and user gates combine into one fail-closed decision, plus a conformance suite for SecurityGate implementations.
import { describe, expect, test, vi } from 'vitest'
import { CapsuleHostError } from '../src/errors.js'
import { decide, decideByRules, RESOLUTION_ERRORS, type Gatekeeper, type HostCall, type Policy, type PolicyRequest } from '../src/gate/decide.js'
import { withinHostTime } from '../src/fetch/host-deadline.js'
import { compileRules, type Rule } from '../src/gate/rules.js'
import type { Decision, GateRequest, GateVerdict, SecurityGate } from '../src/gate/types.js'

const ADDRESS = '203.0.113.1'

interface RequestParts {
  scheme?: 'http' | 'https'
  host?: string
  port?: number
  path?: string
  method?: string
  capsuleId?: string
  hop?: number
  resolve?: GateRequest['resolve']
}

/** An error as `GateRequest.resolve()` raises it (admit marks its own), so decide() passes it on. */
function resolutionError(code: 'blocked_address' | 'dns_failed', message: string): CapsuleHostError {
  const error = new CapsuleHostError(code, message)
  RESOLUTION_ERRORS.add(error)
  return error
}

/** A GateRequest built by hand; `resolve` is a spy that answers one documentation address unless replaced. */
function gateRequest(parts: RequestParts = {}): GateRequest & { resolve: ReturnType<typeof vi.fn<GateRequest['resolve']>> } {
  const scheme = parts.scheme ?? 'https'
  const host = parts.host ?? 'api.example.com'
  const port = parts.port ?? (scheme === 'https' ? 443 : 80)
  const path = parts.path ?? '/v1/items?page=2'
  const defaultPort = scheme === 'https' ? 443 : 80
  const resolve = vi.fn<GateRequest['resolve']>(parts.resolve ?? (async () => [ADDRESS]))
  return {
    capsuleId: parts.capsuleId ?? 'capsule-1',
    url: `${scheme}://${host}${port === defaultPort ? '' : `:${port}`}${path}`,
    scheme,
    host,
    port,
    path,
    method: parts.method ?? 'GET',
    hop: parts.hop ?? 0,
    resolve,
  }
}

function keeper(config: { rules?: unknown; policy?: Policy; gates?: SecurityGate[] } = {}): Gatekeeper {
  return { rules: compileRules(config.rules as Rule[] | undefined), policy: config.policy, gates: config.gates ?? [] }
}

/** A policy that returns `value` as is (the type says boolean; a host author's JS may return anything). */
function policyReturning(value: unknown): Policy {
  return vi.fn(() => value) as unknown as Policy
}

function gate(name: string, check: (request: GateRequest) => unknown): SecurityGate & { check: ReturnType<typeof vi.fn> } {
  return { name, check: vi.fn(check) } as unknown as SecurityGate & { check: ReturnType<typeof vi.fn> }
}

const allowGate = (name: string) => gate(name, () => ({ allow: true }))
const denyGate = (name: string, reason: string) => gate(name, () => ({ allow: false, reason }))
const DEFAULT_DENY: Decision = { allowed: false, decidedBy: 'default', reason: 'nothing is configured', detail: 'no rule, policy or gate is configured, so nothing is allowed' }

describe('decide: rules and policy', () => {
  test.each([
    { name: 'nothing configured: denied by default', config: {}, request: {}, decision: DEFAULT_DENY },
    { name: 'empty rules array and nothing else: denied by default', config: { rules: [] }, request: {}, decision: DEFAULT_DENY },
    { name: 'rules only: matching rule allows, credited to its id', config: { rules: [{ host: 'api.example.com' }] }, request: {}, decision: { allowed: true, decidedBy: 'rule:api.example.com' } },
    { name: 'rules only: second rule credited', config: { rules: [{ host: 'a.example.org' }, { host: '*.example.com' }] }, request: {}, decision: { allowed: true, decidedBy: 'rule:*.example.com' } },
    { name: 'rules only: unknown host denied by rules', config: { rules: [{ host: 'a.example.org' }] }, request: {}, decision: { allowed: false, decidedBy: 'rules', reason: 'no rule matches the host', detail: 'no rule allows host api.example.com' } },
    { name: 'rules only: http refused by the https-only default', config: { rules: [{ host: 'api.example.com' }] }, request: { scheme: 'http' as const }, decision: { allowed: false, decidedBy: 'rules', reason: 'scheme not allowed', detail: 'rule api.example.com allows api.example.com over https only' } },
    { name: 'rules only: wrong port', config: { rules: [{ host: 'api.example.com' }] }, request: { port: 8443 }, decision: { allowed: false, decidedBy: 'rules', reason: 'port not allowed', detail: 'rule api.example.com allows api.example.com on port 443, not 8443' } },
    { name: 'policy only: true allows', config: { policy: policyReturning(true) }, request: {}, decision: { allowed: true, decidedBy: 'policy' } },
    { name: 'policy only: false denies', config: { policy: policyReturning(false) }, request: {}, decision: { allowed: false, decidedBy: 'policy', reason: 'refused by the policy', detail: 'the policy refused the request' } },
    { name: 'policy only: Promise<true> allows', config: { policy: policyReturning(Promise.resolve(true)) }, request: {}, decision: { allowed: true, decidedBy: 'policy' } },
    { name: 'policy only: Promise<false> denies', config: { policy: policyReturning(Promise.resolve(false)) }, request: {}, decision: { allowed: false, decidedBy: 'policy', reason: 'refused by the policy', detail: 'the policy refused the request' } },
    { name: 'policy only: 1 is not true (denied)', config: { policy: policyReturning(1) }, request: {}, decision: { allowed: false, decidedBy: 'policy', reason: 'refused by the policy', detail: 'the policy refused the request' } },
    { name: "policy only: 'yes' is not true (denied)", config: { policy: policyReturning('yes') }, request: {}, decision: { allowed: false, decidedBy: 'policy', reason: 'refused by the policy', detail: 'the policy refused the request' } },
    { name: "policy only: 'true' string is not true (denied)", config: { policy: policyReturning('true') }, request: {}, decision: { allowed: false, decidedBy: 'policy', reason: 'refused by the policy', detail: 'the policy refused the request' } },
    { name: 'policy only: an object is not true (denied)', config: { policy: policyReturning({ allow: true }) }, request: {}, decision: { allowed: false, decidedBy: 'policy', reason: 'refused by the policy', detail: 'the policy refused the request' } },
    { name: 'policy only: Promise<1> is not true (denied)', config: { policy: policyReturning(Promise.resolve(1)) }, request: {}, decision: { allowed: false, decidedBy: 'policy', reason: 'refused by the policy', detail: 'the policy refused the request' } },
    { name: 'policy only: undefined denies', config: { policy: policyReturning(undefined) }, request: {}, decision: { allowed: false, decidedBy: 'policy', reason: 'refused by the policy', detail: 'the policy refused the request' } },
    { name: 'policy only: null denies', config: { policy: policyReturning(null) }, request: {}, decision: { allowed: false, decidedBy: 'policy', reason: 'refused by the policy', detail: 'the policy refused the request' } },
    { name: 'policy only: the reason never repeats the URL (it may carry a query)', config: { policy: policyReturning(false) }, request: { method: 'DELETE', scheme: 'http' as const, port: 8080, path: '/x?token=1' }, decision: { allowed: false, decidedBy: 'policy', reason: 'refused by the policy', detail: 'the policy refused the request' } },
    { name: 'policy throws: denied by the policy', config: { policy: (() => { throw new Error('bug in policy') }) as Policy }, request: {}, decision: { allowed: false, decidedBy: 'policy', reason: 'the policy failed', detail: 'the policy threw: Error: bug in policy', thrown: new Error('bug in policy') } },
    { name: 'policy rejects: denied by the policy', config: { policy: (async () => { throw new Error('bug in policy') }) as Policy }, request: {}, decision: { allowed: false, decidedBy: 'policy', reason: 'the policy failed', detail: 'the policy threw: Error: bug in policy', thrown: new Error('bug in policy') } },
    { name: 'policy throws a non-Error: denied', config: { policy: (() => { throw 'nope' }) as Policy }, request: {}, decision: { allowed: false, decidedBy: 'policy', reason: 'the policy failed', detail: 'the policy threw: nope', thrown: 'nope' } },
    { name: 'rules + policy: rule match wins without the policy', config: { rules: [{ host: 'api.example.com' }], policy: policyReturning(false) }, request: {}, decision: { allowed: true, decidedBy: 'rule:api.example.com' } },
    { name: 'rules + policy: no rule for the host, policy allows', config: { rules: [{ host: 'a.example.org' }], policy: policyReturning(true) }, request: {}, decision: { allowed: true, decidedBy: 'policy' } },
    { name: 'rules + policy: no rule for the host, policy denies', config: { rules: [{ host: 'a.example.org' }], policy: policyReturning(false) }, request: {}, decision: { allowed: false, decidedBy: 'policy', reason: 'refused by the policy', detail: 'the policy refused the request' } },
    { name: 'rules + policy: host rule but other port is no origin match, policy decides', config: { rules: [{ host: 'api.example.com' }], policy: policyReturning(true) }, request: { port: 8443 }, decision: { allowed: true, decidedBy: 'policy' } },
  ] satisfies { name: string; config: { rules?: unknown; policy?: Policy }; request: RequestParts; decision: Decision }[])(
    '$name',
    async ({ config, request, decision }) => {
      const req = gateRequest(request)
      expect(await decide(keeper(config), req)).toEqual(decision)
      // Nothing here asks for addresses: a denied (or rule-allowed) name is never resolved.
      expect(req.resolve).not.toHaveBeenCalled()
    },
  )

  test.each([
    { name: 'rule matched: policy is not called', rules: [{ host: 'api.example.com' }], request: {}, policyCalls: 0 },
    { name: 'wildcard rule matched: policy is not called', rules: [{ host: '*.example.com' }], request: {}, policyCalls: 0 },
    { name: 'no rule for the host: policy called once', rules: [{ host: 'a.example.org' }], request: {}, policyCalls: 1 },
    { name: 'host rule with wrong scheme: policy called once', rules: [{ host: 'api.example.com' }], request: { scheme: 'http' as const }, policyCalls: 1 },
    { name: 'no rules: policy called once', rules: [], request: {}, policyCalls: 1 },
  ] satisfies { name: string; rules: unknown; request: RequestParts; policyCalls: number }[])('$name', async ({ rules, request, policyCalls }) => {
    const policy = vi.fn<Policy>(() => true)
    await decide(keeper({ rules, policy }), gateRequest(request))
    expect(policy).toHaveBeenCalledTimes(policyCalls)
  })

  test('the policy sees the name-level facts and the request resolve(), nothing else', async () => {
    const policy = vi.fn<Policy>(() => true)
    const req = gateRequest({ capsuleId: 'cap-42', method: 'POST', port: 8443, path: '/a?b=c', hop: 2 })
    await decide(keeper({ policy }), req)
    expect(policy.mock.calls[0]?.[0]).toEqual({
      capsuleId: 'cap-42',
      host: 'api.example.com',
      method: 'POST',
      url: 'https://api.example.com:8443/a?b=c',
      port: 8443,
      scheme: 'https',
      path: '/a?b=c',
      resolve: req.resolve,
    } satisfies PolicyRequest)
  })
})

describe('decide: the policy resolves lazily', () => {
  test.each([
    {
      name: 'policy that ignores addresses: resolver never asked',
      policy: (() => true) as Policy,
      decision: { allowed: true, decidedBy: 'policy' },
      resolveCalls: 0,
    },
    {
      name: 'policy that checks the address: resolved once, allowed',
      policy: (async (r: PolicyRequest) => (await r.resolve()).includes(ADDRESS)) as Policy,
      decision: { allowed: true, decidedBy: 'policy' },
      resolveCalls: 1,
    },
    {
      name: 'policy that wants another address: resolved once, denied',
      policy: (async (r: PolicyRequest) => (await r.resolve()).includes('198.51.100.7')) as Policy,
      decision: { allowed: false, decidedBy: 'policy', reason: 'refused by the policy', detail: 'the policy refused the request' },
      resolveCalls: 1,
    },
    {
      name: 'policy that resolves only for POST: GET is not resolved',
      policy: (async (r: PolicyRequest) => (r.method === 'POST' ? (await r.resolve()).length > 0 : true)) as Policy,
      decision: { allowed: true, decidedBy: 'policy' },
      resolveCalls: 0,
    },
  ] satisfies { name: string; policy: Policy; decision: Decision; resolveCalls: number }[])('$name', async ({ policy, decision, resolveCalls }) => {
    const req = gateRequest()
    expect(await decide(keeper({ policy }), req)).toEqual(decision)
    expect(req.resolve).toHaveBeenCalledTimes(resolveCalls)
  })

  test.each([
    { name: 'blocked_address from resolve() rejects decide with that code', error: resolutionError('blocked_address', 'api.example.com resolves to a blocked address') },
    { name: 'dns_failed from resolve() rejects decide with that code', error: resolutionError('dns_failed', 'api.example.com did not resolve') },
  ])('$name', async ({ error }) => {
    const req = gateRequest({ resolve: async () => Promise.reject(error) })
    const policy = vi.fn<Policy>(async (r) => (await r.resolve()).length > 0)
    await expect(decide(keeper({ policy }), req)).rejects.toMatchObject({ name: 'CapsuleHostError', code: error.code, message: error.message })
    expect(req.resolve).toHaveBeenCalledTimes(1)
  })

  test('a coded error the policy made itself (not from resolve()) is a policy failure, not passed on', async () => {
    const own = new CapsuleHostError('blocked_address', 'made up by the policy')
    const policy: Policy = () => {
      throw own
    }
    expect(await decide(keeper({ policy }), gateRequest())).toEqual({
      allowed: false,
      decidedBy: 'policy',
      reason: 'the policy failed',
      detail: 'the policy threw: CapsuleHostError: made up by the policy',
      thrown: own,
    })
  })

  test('a plain Error from resolve() is a policy failure: denied, not rethrown', async () => {
    const req = gateRequest({ resolve: async () => Promise.reject(new Error('resolver exploded')) })
    const policy: Policy = async (r) => (await r.resolve()).length > 0
    expect(await decide(keeper({ policy }), req)).toEqual({ allowed: false, decidedBy: 'policy', reason: 'the policy failed', detail: 'the policy threw: Error: resolver exploded', thrown: new Error('resolver exploded') })
  })

  test('a policy that catches the resolve() error and returns false denies', async () => {
    const req = gateRequest({ resolve: async () => Promise.reject(resolutionError('blocked_address', 'blocked')) })
    const policy: Policy = async (r) => r.resolve().then(() => true, () => false)
    expect(await decide(keeper({ policy }), req)).toEqual({ allowed: false, decidedBy: 'policy', reason: 'refused by the policy', detail: 'the policy refused the request' })
  })
})

describe('decide: user gates', () => {
  test.each([
    { name: 'gates only, all allow: allowed by the gates', gates: () => [allowGate('a'), allowGate('b')], decision: { allowed: true, decidedBy: 'gates' } },
    { name: 'gates only, one gate allows', gates: () => [allowGate('only')], decision: { allowed: true, decidedBy: 'gates' } },
    { name: 'gates only, async gates allow', gates: () => [gate('slow', async () => ({ allow: true })), gate('slower', () => new Promise((r) => setTimeout(() => r({ allow: true }), 5)))], decision: { allowed: true, decidedBy: 'gates' } },
    { name: 'first deny wins', gates: () => [allowGate('a'), denyGate('b', 'b says no'), denyGate('c', 'c says no')], decision: { allowed: false, decidedBy: 'gate:b', reason: 'refused by a gate', detail: 'b says no' } },
    { name: 'deny in the first gate', gates: () => [denyGate('first', 'not today'), allowGate('second')], decision: { allowed: false, decidedBy: 'gate:first', reason: 'refused by a gate', detail: 'not today' } },
    { name: 'deny in the last gate', gates: () => [allowGate('a'), allowGate('b'), denyGate('last', 'last word')], decision: { allowed: false, decidedBy: 'gate:last', reason: 'refused by a gate', detail: 'last word' } },
    { name: 'async deny keeps its reason', gates: () => [gate('async-deny', async () => ({ allow: false, reason: 'quota spent' }))], decision: { allowed: false, decidedBy: 'gate:async-deny', reason: 'refused by a gate', detail: 'quota spent' } },
    { name: 'a gate that throws denies', gates: () => [gate('boom', () => { throw new Error('bug') })], decision: { allowed: false, decidedBy: 'gate:boom', reason: 'a gate failed', detail: 'gate boom threw: Error: bug', thrown: new Error('bug') } },
    { name: 'a gate that rejects denies', gates: () => [gate('async-boom', async () => { throw new Error('bug') })], decision: { allowed: false, decidedBy: 'gate:async-boom', reason: 'a gate failed', detail: 'gate async-boom threw: Error: bug', thrown: new Error('bug') } },
    { name: 'a gate without a check function denies', gates: () => [{ name: 'hollow' } as unknown as SecurityGate], decision: { allowed: false, decidedBy: 'gate:hollow', reason: 'a gate failed', detail: 'gate hollow threw: TypeError: gate.check is not a function', thrown: new TypeError('gate.check is not a function') } },
    { name: 'undefined verdict denies', gates: () => [gate('silent', () => undefined)], decision: { allowed: false, decidedBy: 'gate:silent', reason: 'refused by a gate', detail: 'refused' } },
    { name: 'null verdict denies', gates: () => [gate('null', () => null)], decision: { allowed: false, decidedBy: 'gate:null', reason: 'refused by a gate', detail: 'refused' } },
    { name: 'bare true verdict denies', gates: () => [gate('bool', () => true)], decision: { allowed: false, decidedBy: 'gate:bool', reason: 'refused by a gate', detail: 'refused' } },
    { name: "allow: 'true' (string) denies", gates: () => [gate('str', () => ({ allow: 'true' }))], decision: { allowed: false, decidedBy: 'gate:str', reason: 'refused by a gate', detail: 'refused' } },
    { name: 'allow: 1 denies', gates: () => [gate('one', () => ({ allow: 1 }))], decision: { allowed: false, decidedBy: 'gate:one', reason: 'refused by a gate', detail: 'refused' } },
    { name: 'async undefined verdict denies', gates: () => [gate('async-silent', async () => undefined)], decision: { allowed: false, decidedBy: 'gate:async-silent', reason: 'refused by a gate', detail: 'refused' } },
    { name: 'deny without a reason gets "refused"', gates: () => [gate('terse', () => ({ allow: false }))], decision: { allowed: false, decidedBy: 'gate:terse', reason: 'refused by a gate', detail: 'refused' } },
    { name: 'deny with an empty reason gets "refused"', gates: () => [gate('empty', () => ({ allow: false, reason: '' }))], decision: { allowed: false, decidedBy: 'gate:empty', reason: 'refused by a gate', detail: 'refused' } },
    { name: 'deny with a non-string reason gets "refused"', gates: () => [gate('num', () => ({ allow: false, reason: 42 }))], decision: { allowed: false, decidedBy: 'gate:num', reason: 'refused by a gate', detail: 'refused' } },
    { name: 'garbage verdict after an allow denies', gates: () => [allowGate('fine'), gate('garbage', () => 'allow')], decision: { allowed: false, decidedBy: 'gate:garbage', reason: 'refused by a gate', detail: 'refused' } },
  ] satisfies { name: string; gates: () => SecurityGate[]; decision: Decision }[])('$name', async ({ gates, decision }) => {
    const req = gateRequest()
    expect(await decide(keeper({ gates: gates() }), req)).toEqual(decision)
    expect(req.resolve).not.toHaveBeenCalled()
  })

  test('gates run in order and stop at the first deny', async () => {
    const a = allowGate('a')
    const b = denyGate('b', 'b says no')
    const c = allowGate('c')
    const req = gateRequest()
    await decide(keeper({ gates: [a, b, c] }), req)
    expect([a.check.mock.calls.length, b.check.mock.calls.length, c.check.mock.calls.length]).toEqual([1, 1, 0])
    expect(a.check.mock.calls[0]?.[0]).toBe(req)
  })

  test('a gate that asks resolve() gets the addresses', async () => {
    const req = gateRequest()
    const seen: string[] = []
    const g = gate('addr', async (r) => {
      seen.push(...(await r.resolve()))
      return { allow: true }
    })
    expect(await decide(keeper({ gates: [g] }), req)).toEqual({ allowed: true, decidedBy: 'gates' })
    expect(seen).toEqual([ADDRESS])
    expect(req.resolve).toHaveBeenCalledTimes(1)
  })

  test('a coded error from resolve() inside a gate rejects decide with that code', async () => {
    const req = gateRequest({ resolve: async () => Promise.reject(resolutionError('blocked_address', 'blocked')) })
    const g = gate('addr', async (r) => ((await r.resolve()).length > 0 ? { allow: true } : { allow: false, reason: 'none' }))
    await expect(decide(keeper({ gates: [g] }), req)).rejects.toMatchObject({ code: 'blocked_address', message: 'blocked' })
  })

  test('a coded error a gate made itself (not from resolve()) is a gate failure, not passed on', async () => {
    const own = new CapsuleHostError('dns_failed', 'made up by the gate')
    const g = gate('liar', () => {
      throw own
    })
    expect(await decide(keeper({ gates: [g] }), gateRequest())).toEqual({
      allowed: false,
      decidedBy: 'gate:liar',
      reason: 'a gate failed',
      detail: 'gate liar threw: CapsuleHostError: made up by the gate',
      thrown: own,
    })
  })
})

describe('decide: a gate or the policy that does not answer in time', () => {
  const hang = () => new Promise<never>(() => {})
  const budget = { hostTimeoutMs: 20, deadline: Number.POSITIVE_INFINITY, totalTimeoutMs: Number.POSITIVE_INFINITY, signal: undefined }
  const within: HostCall = (step, work) => withinHostTime(budget, step, work)

  test.each<[string, Parameters<typeof keeper>[0], Decision]>([
    ['a hanging gate', { gates: [allowGate('first'), gate('stuck', hang)] }, { allowed: false, decidedBy: 'gate:stuck', reason: 'a host step did not answer in time', detail: "the host's gate:stuck did not answer within 20 ms", code: 'timeout' }],
    ['a hanging policy', { policy: hang as Policy }, { allowed: false, decidedBy: 'policy', reason: 'a host step did not answer in time', detail: "the host's policy did not answer within 20 ms", code: 'timeout' }],
    ['a policy that resolves, then hangs', { policy: (async (r: PolicyRequest) => (await r.resolve()) && hang()) as Policy }, { allowed: false, decidedBy: 'policy', reason: 'a host step did not answer in time', detail: "the host's policy did not answer within 20 ms", code: 'timeout' }],
    ['answers in time', { policy: async () => true, gates: [allowGate('quick')] }, { allowed: true, decidedBy: 'policy' }],
  ])('%s', async (_name, config, decision) => {
    expect(await decide(keeper(config), gateRequest(), undefined, within)).toEqual(decision)
  })

  test('a gate after the one that timed out is not asked', async () => {
    const after = allowGate('after')
    await decide(keeper({ gates: [gate('stuck', hang), after] }), gateRequest(), undefined, within)
    expect(after.check).not.toHaveBeenCalled()
  })
})

describe('decide: rules, policy and gates together', () => {
  test.each([
    { name: 'rule allows, gates allow: credited to the rule', config: () => ({ rules: [{ host: 'api.example.com' }], gates: [allowGate('a')] }), decision: { allowed: true, decidedBy: 'rule:api.example.com' }, gateCalls: 1 },
    { name: 'rule allows, a gate denies: the gate decides', config: () => ({ rules: [{ host: 'api.example.com' }], gates: [allowGate('a'), denyGate('audit', 'capsule over budget')] }), decision: { allowed: false, decidedBy: 'gate:audit', reason: 'refused by a gate', detail: 'capsule over budget' }, gateCalls: 1 },
    { name: 'no rule matches: denied by rules, gates not asked', config: () => ({ rules: [{ host: 'a.example.org' }], gates: [allowGate('a')] }), decision: { allowed: false, decidedBy: 'rules', reason: 'no rule matches the host', detail: 'no rule allows host api.example.com' }, gateCalls: 0 },
    { name: 'policy allows, gates allow: credited to the policy', config: () => ({ policy: policyReturning(true), gates: [allowGate('a')] }), decision: { allowed: true, decidedBy: 'policy' }, gateCalls: 1 },
    { name: 'policy allows, a gate denies: the gate decides', config: () => ({ policy: policyReturning(true), gates: [denyGate('a', 'no')] }), decision: { allowed: false, decidedBy: 'gate:a', reason: 'refused by a gate', detail: 'no' }, gateCalls: 1 },
    { name: 'policy denies: gates not asked', config: () => ({ policy: policyReturning(false), gates: [allowGate('a')] }), decision: { allowed: false, decidedBy: 'policy', reason: 'refused by the policy', detail: 'the policy refused the request' }, gateCalls: 0 },
    { name: 'empty rules + gates: gates decide alone', config: () => ({ rules: [], gates: [allowGate('a')] }), decision: { allowed: true, decidedBy: 'gates' }, gateCalls: 1 },
    { name: 'rule + policy + gate all allow: credited to the rule', config: () => ({ rules: [{ host: '*.example.com' }], policy: policyReturning(false), gates: [allowGate('a')] }), decision: { allowed: true, decidedBy: 'rule:*.example.com' }, gateCalls: 1 },
  ] satisfies { name: string; config: () => { rules?: unknown; policy?: Policy; gates: (SecurityGate & { check: ReturnType<typeof vi.fn> })[] }; decision: Decision; gateCalls: number }[])(
    '$name',
    async ({ config, decision, gateCalls }) => {
      const built = config()
      expect(await decide(keeper(built), gateRequest())).toEqual(decision)
      expect(built.gates[0]?.check).toHaveBeenCalledTimes(gateCalls)
    },
  )
})

// ---------------------------------------------------------------------------------------------
// SecurityGate conformance: any gate implementation can be run through these checks.

/** Why `verdict` is not a valid GateVerdict, or 'ok'. */
function verdictProblem(verdict: unknown): string {
  if (verdict === null || typeof verdict !== 'object') return `verdict is ${verdict === null ? 'null' : typeof verdict}, not an object`
  const v = verdict as Record<string, unknown>
  if (v.allow === true) return Object.keys(v).every((k) => k === 'allow') ? 'ok' : 'an allow verdict carries extra fields'
  if (v.allow !== false) return `allow is ${JSON.stringify(v.allow)}, not true or false`
  if (typeof v.reason !== 'string' || v.reason.trim() === '') return 'a deny verdict needs a non-empty string reason'
  return 'ok'
}

const CONFORMANCE_REQUESTS: { name: string; parts: RequestParts }[] = [
  { name: 'https GET on 443', parts: {} },
  { name: 'http POST on 80', parts: { scheme: 'http', method: 'POST' } },
  { name: 'https PUT on 8443', parts: { method: 'PUT', port: 8443 } },
  { name: 'IPv6 literal host', parts: { host: '[2001:db8::1]' } },
  { name: 'other capsule, redirect hop', parts: { capsuleId: 'capsule-2', hop: 1, path: '/next' } },
  { name: 'DELETE on a wildcard-able host', parts: { host: 'eu.example.com', method: 'DELETE' } },
]

export function runGateConformance(name: string, makeGate: () => SecurityGate): void {
  describe(`SecurityGate conformance: ${name}`, () => {
    test('has a non-empty string name', () => {
      const g = makeGate()
      expect(typeof g.name === 'string' && g.name.trim() !== '').toBe(true)
    })

    test('has a check function', () => {
      expect(typeof makeGate().check).toBe('function')
    })

    test.each(CONFORMANCE_REQUESTS)('returns { allow: true } or { allow: false, reason }: $name', async ({ parts }) => {
      expect(verdictProblem(await makeGate().check(gateRequest(parts)))).toBe('ok')
    })

    test.each(CONFORMANCE_REQUESTS)('is deterministic for the same request: $name', async ({ parts }) => {
      const g = makeGate()
      const first = await g.check(gateRequest(parts))
      const again = await g.check(gateRequest(parts))
      const fresh = await makeGate().check(gateRequest(parts))
      expect([again, fresh]).toEqual([first, first])
    })

    test('decide() credits its denials to gate:<name> with the gate reason as the detail', async () => {
      const g = makeGate()
      for (const { parts } of CONFORMANCE_REQUESTS) {
        const verdict = await g.check(gateRequest(parts))
        const decision = await decide(keeper({ gates: [g] }), gateRequest(parts))
        expect(decision).toEqual(verdict.allow ? { allowed: true, decidedBy: 'gates' } : { allowed: false, decidedBy: `gate:${g.name}`, reason: 'refused by a gate', detail: verdict.reason })
      }
    })
  })
}

describe('verdictProblem (the conformance checker itself can fail)', () => {
  test.each([
    { name: 'allow verdict', verdict: { allow: true }, problem: 'ok' },
    { name: 'deny verdict with reason', verdict: { allow: false, reason: 'no' }, problem: 'ok' },
    { name: 'undefined', verdict: undefined, problem: 'verdict is undefined, not an object' },
    { name: 'null', verdict: null, problem: 'verdict is null, not an object' },
    { name: 'bare true', verdict: true, problem: 'verdict is boolean, not an object' },
    { name: 'allow as a string', verdict: { allow: 'yes' }, problem: 'allow is "yes", not true or false' },
    { name: 'allow missing', verdict: { reason: 'x' }, problem: 'allow is undefined, not true or false' },
    { name: 'deny without reason', verdict: { allow: false }, problem: 'a deny verdict needs a non-empty string reason' },
    { name: 'deny with blank reason', verdict: { allow: false, reason: '  ' }, problem: 'a deny verdict needs a non-empty string reason' },
    { name: 'allow with a stray reason', verdict: { allow: true, reason: 'why' }, problem: 'an allow verdict carries extra fields' },
  ])('$name', ({ verdict, problem }) => {
    expect(verdictProblem(verdict)).toBe(problem)
  })
})

/** Sync sample: read-only methods only. */
const readOnlyGate = (): SecurityGate => ({
  name: 'read-only',
  check: (r): GateVerdict => (r.method === 'GET' || r.method === 'HEAD' ? { allow: true } : { allow: false, reason: `${r.method} is not allowed; this host is read-only` }),
})

/** Async sample: standard ports only, decided after a tick. */
const standardPortGate = (): SecurityGate => ({
  name: 'standard-port',
  check: async (r): Promise<GateVerdict> => {
    await new Promise((resolve) => setTimeout(resolve, 1))
    return r.port === 443 || r.port === 80 ? { allow: true } : { allow: false, reason: `port ${r.port} is not a standard port` }
  },
})

/** Adapter sample: compiled rules exposed as a SecurityGate through decide(). */
const rulesGate = (): SecurityGate => {
  const rules = keeper({ rules: [{ host: '*.example.com', port: [443, 8443] }] })
  return {
    name: 'rules',
    check: async (r): Promise<GateVerdict> => {
      const d = await decide(rules, r)
      return d.allowed ? { allow: true } : { allow: false, reason: d.detail }
    },
  }
}

runGateConformance('sync read-only gate', readOnlyGate)
runGateConformance('async standard-port gate', standardPortGate)
runGateConformance('rules adapter gate', rulesGate)

describe('sample gates decide what they claim', () => {
  test.each([
    { name: 'read-only: GET allowed', make: readOnlyGate, parts: {}, verdict: { allow: true } },
    { name: 'read-only: POST denied', make: readOnlyGate, parts: { method: 'POST' }, verdict: { allow: false, reason: 'POST is not allowed; this host is read-only' } },
    { name: 'standard-port: 443 allowed', make: standardPortGate, parts: {}, verdict: { allow: true } },
    { name: 'standard-port: 8443 denied', make: standardPortGate, parts: { port: 8443 }, verdict: { allow: false, reason: 'port 8443 is not a standard port' } },
    { name: 'rules adapter: one label allowed on 8443', make: rulesGate, parts: { host: 'eu.example.com', port: 8443 }, verdict: { allow: true } },
    { name: 'rules adapter: IPv6 literal denied', make: rulesGate, parts: { host: '[2001:db8::1]' }, verdict: { allow: false, reason: 'no rule allows host [2001:db8::1]' } },
  ] satisfies { name: string; make: () => SecurityGate; parts: RequestParts; verdict: GateVerdict }[])('$name', async ({ make, parts, verdict }) => {
    expect(await make().check(gateRequest(parts))).toEqual(verdict)
  })
})

describe('decideByRules: the synchronous decision agrees with decide() wherever it answers', () => {
  const rules: Rule[] = [
    { host: 'api.example.com', routes: [{ path: '/v1/**', methods: ['GET'] }] },
    { host: '*.cdn.example.com' },
  ]
  const gate: SecurityGate = { name: 'audit', check: () => ({ allow: true }) }
  const policy: Policy = () => true
  const configs: Array<[string, Gatekeeper, boolean]> = [
    // [name, gatekeeper, whether decideByRules may answer at all]
    ['rules only', { rules: compileRules(rules), policy: undefined, gates: [] }, true],
    ['rules and a policy', { rules: compileRules(rules), policy, gates: [] }, true],
    ['rules and a gate', { rules: compileRules(rules), policy: undefined, gates: [gate] }, false],
    ['a policy only', { rules: [], policy, gates: [] }, false],
    ['nothing', { rules: [], policy: undefined, gates: [] }, false],
  ]
  const requests: Array<[string, RequestParts]> = [
    ['allowed by a route', {}],
    ['route refuses the method', { method: 'POST' }],
    ['no route matches the path', { path: '/admin' }],
    ['a wildcard host', { host: 'a.cdn.example.com', path: '/x' }],
    ['the wildcard apex', { host: 'cdn.example.com', path: '/x' }],
    ['no rule matches the host', { host: 'other.example.com' }],
    ['http refused', { scheme: 'http' }],
    ['another port', { port: 8443 }],
  ]
  for (const [configName, keeper, mayAnswer] of configs) {
    test.each(requests)(`${configName}: %s`, async (_name, parts) => {
      const fast = decideByRules(keeper, gateRequest(parts))
      if (!mayAnswer) return expect(fast).toBeUndefined()
      // With a policy, a request no origin rule matched (host, scheme or port) is the policy's: the
      // fast path must not answer it; every other one it must answer.
      const policysOwn = keeper.policy !== undefined && ['no rule matches the host', 'the wildcard apex', 'http refused', 'another port'].includes(_name)
      if (policysOwn) return expect(fast).toBeUndefined()
      expect(fast).toBeDefined()
      expect(fast).toEqual(await decide(keeper, gateRequest(parts)))
    })
  }

  test('the manifest is checked first, as decide() does', async () => {
    const keeper: Gatekeeper = { rules: compileRules(rules), policy: undefined, gates: [] }
    const capabilities = { undeclared: () => 'api.example.com is not declared' } as unknown as Parameters<typeof decide>[2]
    const fast = decideByRules(keeper, gateRequest(), capabilities)
    expect(fast).toMatchObject({ allowed: false, decidedBy: 'manifest' })
    expect(fast).toEqual(await decide(keeper, gateRequest(), capabilities))
  })
})
