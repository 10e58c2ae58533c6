// Compiles host rules once at creation and matches a request's origin (host, scheme, port) against them.
import type { DenyReason, GateRequest } from './types.js'
import { compileHostPattern, type HostPattern } from './host-pattern.js'
import { compileRoute, type CompiledRoute, type Route } from './routes.js'
import { middlewareList } from '../middleware/compose.js'
import type { Middleware, MiddlewareOption } from '../middleware/types.js'

/** One origin rule, as a host author writes it. */
export interface Rule {
  /** How the audit log names the rule (`decidedBy: "rule:<id>"`); unique. Default: the host pattern (`host#2` for a repeat). */
  id?: string
  /** `api.example.com`, `*.example.com` (exactly one label, never the apex), or an IP literal. */
  host: string
  /** Default true: only https. False allows http as well. */
  httpsOnly?: boolean
  /** Allowed ports. Default: the scheme's own port (443 for https, 80 for http). */
  port?: number | number[]
  /** Paths (and methods) allowed on this origin, tried in order; `[]` denies every path. Omitted: all. */
  routes?: Route[]
  /** Origin-level middleware, run after the global middleware and before the route's. */
  middleware?: MiddlewareOption
}

export interface CompiledRule {
  /** The rule's id (its own, or its host pattern). */
  readonly id: string
  /** `rule:<id>`: how decisions name the rule. */
  readonly decider: `rule:${string}`
  readonly host: HostPattern
  readonly schemes: ReadonlySet<'http' | 'https'>
  /** Undefined: the scheme's default port. */
  readonly ports: ReadonlySet<number> | undefined
  /** Undefined: every path and method. */
  readonly routes: readonly CompiledRoute[] | undefined
  readonly middleware: readonly Middleware[]
}

/** Why no rule (or route) allowed a request: the stable reason and the request's detail. */
export interface Mismatch {
  readonly reason: DenyReason
  readonly detail: string
}

export type OriginMatch = { readonly matched: true; readonly rule: CompiledRule } | ({ readonly matched: false } & Mismatch)

const DEFAULT_PORT = { http: 80, https: 443 } as const
const KNOWN_KEYS = new Set(['id', 'host', 'httpsOnly', 'port', 'routes', 'middleware'])
const RULE_ID = /^[A-Za-z0-9._:*@\/#-]{1,128}$/

function compileRule(rule: Rule, index: number, taken: Set<string>): CompiledRule {
  const where = `rules[${index}]${typeof rule?.host === 'string' ? ` (host "${rule.host}")` : ''}`
  const fail = (message: string): never => {
    throw new TypeError(`${where}: ${message}`)
  }
  if (rule === null || typeof rule !== 'object') fail('a rule must be an object such as { host: "api.example.com" }')
  for (const key of Object.keys(rule)) {
    if (!KNOWN_KEYS.has(key)) fail(`unknown field "${key}"; a rule has id, host, httpsOnly, port, routes, middleware`)
  }
  let middleware: Middleware[] = []
  try {
    middleware = middlewareList(rule.middleware, 'middleware')
  } catch (error) {
    fail((error as Error).message)
  }
  let routes: CompiledRoute[] | undefined
  if (rule.routes !== undefined) {
    if (!Array.isArray(rule.routes)) fail('routes must be a list, such as [{ path: "/v1/**" }]; [] denies every path')
    routes = rule.routes.map((route, i) => {
      try {
        return compileRoute(route)
      } catch (error) {
        return fail(`routes[${i}]${typeof route?.path === 'string' ? ` ("${route.path}")` : ''}: ${(error as Error).message}`)
      }
    })
  }
  let host: HostPattern
  try {
    host = compileHostPattern(rule.host)
  } catch (error) {
    return fail((error as Error).message)
  }
  if (rule.httpsOnly !== undefined && typeof rule.httpsOnly !== 'boolean') fail('httpsOnly must be true or false')
  let ports: Set<number> | undefined
  if (rule.port !== undefined) {
    const list = Array.isArray(rule.port) ? rule.port : [rule.port]
    if (list.length === 0) fail('port is an empty list; omit it for the default port or list the ports')
    for (const port of list) {
      if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`port ${typeof port === 'number' ? String(port) : JSON.stringify(port)} is not a port; use a whole number from 1 to 65535`)
    }
    ports = new Set(list)
  }
  if (rule.id !== undefined && (typeof rule.id !== 'string' || !RULE_ID.test(rule.id))) {
    fail('id must be 1 to 128 letters, digits or ._:*@/#- characters')
  }
  let id = rule.id ?? host.source
  for (let n = 2; rule.id === undefined && taken.has(id); n++) id = `${host.source}#${n}`
  taken.add(id)
  return {
    id,
    decider: `rule:${id}`,
    host,
    schemes: new Set(rule.httpsOnly === false ? ['http', 'https'] : ['https']),
    ports,
    routes,
    middleware,
  }
}

/** Validates and compiles rules; throws a TypeError that names the rule and proposes the fix. */
export function compileRules(rules: Rule | readonly Rule[] | undefined): readonly CompiledRule[] {
  if (rules === undefined) return []
  const list = Array.isArray(rules) ? rules : [rules as Rule]
  // Explicit ids first, so a default id never takes one a later rule asked for.
  const taken = new Set<string>()
  list.forEach((rule, index) => {
    const id = (rule as Rule | undefined)?.id
    if (typeof id !== 'string') return
    if (taken.has(id)) throw new TypeError(`rules[${index}]: id "${id}" is used by another rule; give each rule its own id`)
    taken.add(id)
  })
  return list.map((rule, index) => compileRule(rule, index, taken))
}

function portAllowed(rule: CompiledRule, scheme: 'http' | 'https', port: number): boolean {
  return rule.ports ? rule.ports.has(port) : port === DEFAULT_PORT[scheme]
}

/** The first rule whose host, scheme and port all match; otherwise why none did. */
export function matchOrigin(rules: readonly CompiledRule[], request: Pick<GateRequest, 'host' | 'scheme' | 'port'>): OriginMatch {
  const hostMatches = rules.filter((rule) => rule.host.matches(request.host))
  const rule = hostMatches.find((r) => r.schemes.has(request.scheme) && portAllowed(r, request.scheme, request.port))
  if (rule) return { matched: true, rule }
  const near = hostMatches[0]
  if (!near) return { matched: false, reason: 'no rule matches the host', detail: `no rule allows host ${request.host}` }
  if (!near.schemes.has(request.scheme)) {
    return { matched: false, reason: 'scheme not allowed', detail: `rule ${near.id} allows ${request.host} over https only` }
  }
  const ports = near.ports ? [...near.ports].join(', ') : String(DEFAULT_PORT[request.scheme])
  return { matched: false, reason: 'port not allowed', detail: `rule ${near.id} allows ${request.host} on port ${ports}, not ${request.port}` }
}

export type RequestMatch =
  | { readonly allowed: true; readonly rule: CompiledRule; readonly route: CompiledRoute | undefined; readonly params: Record<string, string> }
  | ({ readonly allowed: false; readonly rule: CompiledRule | undefined } & Mismatch)

/**
 * Matches the origin, then (when the rule has routes) the first route whose path and method
 * match. An origin that matched with no route matching is a refusal by that rule: the policy is
 * not asked. `path` is the path as sent; its query string is not part of the match.
 */
export function matchRequest(
  rules: readonly CompiledRule[],
  request: Pick<GateRequest, 'host' | 'scheme' | 'port' | 'path' | 'method'>,
): RequestMatch {
  const origin = matchOrigin(rules, request)
  if (!origin.matched) return { allowed: false, rule: undefined, reason: origin.reason, detail: origin.detail }
  const { rule } = origin
  if (!rule.routes) return { allowed: true, rule, route: undefined, params: {} }
  const query = request.path.indexOf('?')
  const path = query === -1 ? request.path : request.path.slice(0, query)
  let pathMatched: CompiledRoute | undefined
  for (const route of rule.routes) {
    const params = route.match(path)
    if (!params) continue
    if (!route.methods || route.methods.has(request.method)) return { allowed: true, rule, route, params }
    pathMatched ??= route
  }
  if (pathMatched) {
    const methods = new Set(rule.routes.filter((r) => r.match(path)).flatMap((r) => [...(r.methods ?? [])]))
    const detail = `rule ${rule.id} allows ${[...methods].join(', ')} on ${path}, not ${request.method}`
    return { allowed: false, rule, reason: 'method not allowed on the route', detail }
  }
  const detail = rule.routes.length === 0 ? `rule ${rule.id} has no routes, so every path is denied` : `no route of rule ${rule.id} matches ${path}`
  return { allowed: false, rule, reason: 'no route matches the path', detail }
}
