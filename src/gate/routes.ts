// Compiles route path patterns once and matches a request's path (as sent) and method against them.
import { middlewareList } from '../middleware/compose.js'
import type { Middleware, MiddlewareOption } from '../middleware/types.js'

/** A route on an origin rule, as a host author writes it. */
export interface Route {
  /** `/repos/:owner/:repo`, `/files/:ext(png|jpg)`, `/api/**`. A parameter is always a whole segment. */
  path: string
  /** One method, a list, or omitted for every method. */
  methods?: string | string[]
  /** Route-level middleware, run after the global and origin middleware. */
  middleware?: MiddlewareOption
}

/** Methods a route may name (CONNECT, TRACE and TRACK are refused for every request). */
export const ROUTE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

type Segment =
  | { readonly kind: 'literal'; readonly text: string }
  | { readonly kind: 'param'; readonly name: string; readonly allowed: ReadonlySet<string> | undefined }
  | { readonly kind: 'rest' }

export interface CompiledRoute {
  /** The pattern as written. */
  readonly path: string
  readonly methods: ReadonlySet<string> | undefined
  readonly middleware: readonly Middleware[]
  /** Params by name (percent-decoded), or undefined when the path does not match. */
  match(path: string): Record<string, string> | undefined
}

const PARAM = /^:([A-Za-z_][A-Za-z0-9_]*)(?:\(([^()]*)\))?$/
const ALTERNATIVE = /^[A-Za-z0-9._~-]+$/

/** How a literal segment is sent: the WHATWG URL parser's path encoding. */
function asSent(segment: string): string {
  return new URL(`http://h/${segment}`).pathname.slice(1)
}

function compileSegment(raw: string, index: number, count: number, names: Set<string>): Segment {
  if (raw === '**') {
    if (index !== count - 1) throw new Error('"**" may only be the last segment, as in "/api/**"')
    return { kind: 'rest' }
  }
  if (raw.includes('*')) throw new Error(`"${raw}": "*" is only allowed as a whole last segment "**"`)
  if (raw.startsWith(':')) {
    const param = PARAM.exec(raw)
    if (!param) throw new Error(`"${raw}" is not a parameter; write ":name" or ":name(a|b)"`)
    const [, name, alternatives] = param as unknown as [string, string, string | undefined]
    if (names.has(name)) throw new Error(`parameter ":${name}" appears twice; give each parameter its own name`)
    names.add(name)
    if (alternatives === undefined) return { kind: 'param', name, allowed: undefined }
    const list = alternatives.split('|')
    if (list.some((a) => !ALTERNATIVE.test(a))) {
      throw new Error(`":${name}(${alternatives})": alternatives are plain words separated by "|", as in ":${name}(png|jpg)"`)
    }
    return { kind: 'param', name, allowed: new Set(list) }
  }
  if (raw === '') throw new Error('the pattern has an empty segment ("//"); remove it')
  if (raw === '.' || raw === '..') throw new Error(`"${raw}" segments are resolved away before matching; remove it`)
  if (/%(?![0-9A-Fa-f]{2})/.test(raw) || /%2f|%5c|%25/i.test(raw)) {
    throw new Error(`"${raw}" has a percent-escape that no request path can contain`)
  }
  const sent = asSent(raw)
  if (sent !== raw) throw new Error(`write the segment as it is sent: use "${sent}" instead of "${raw}"`)
  return { kind: 'literal', text: raw }
}

/** Percent-decodes a matched segment; undefined when its bytes are not UTF-8 (the route does not match). */
function decodeParam(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw)
  } catch {
    return undefined
  }
}

function compileMethods(methods: Route['methods']): Set<string> | undefined {
  if (methods === undefined) return undefined
  const list = Array.isArray(methods) ? methods : [methods]
  if (list.length === 0) throw new Error('methods is an empty list; omit it to allow every method')
  return new Set(
    list.map((method) => {
      const upper = typeof method === 'string' ? method.toUpperCase() : ''
      if (!ROUTE_METHODS.has(upper)) {
        throw new Error(`unknown method ${JSON.stringify(method)}; use one of ${[...ROUTE_METHODS].join(', ')}`)
      }
      return upper
    }),
  )
}

/** Compiles one route; throws an Error whose message proposes the fix. */
export function compileRoute(route: Route): CompiledRoute {
  if (route === null || typeof route !== 'object') throw new Error('a route is an object such as { path: "/v1/**" }')
  for (const key of Object.keys(route)) {
    if (key !== 'path' && key !== 'methods' && key !== 'middleware') throw new Error(`unknown route field "${key}"; a route has path, methods, middleware`)
  }
  const { path } = route
  if (typeof path !== 'string' || !path.startsWith('/')) throw new Error(`path ${JSON.stringify(path)} must start with "/"`)
  if (/[?#]/.test(path)) throw new Error(`path "${path}" must not contain a query or fragment; routes match the path only`)
  const rawSegments = path === '/' ? [''] : path.slice(1).split('/')
  const names = new Set<string>()
  // A single trailing empty segment is a trailing slash: significant, matched literally.
  const segments = rawSegments.map((raw, i) =>
    raw === '' && i === rawSegments.length - 1 ? ({ kind: 'literal', text: '' } as const) : compileSegment(raw, i, rawSegments.length, names),
  )
  const methods = compileMethods(route.methods)
  const middleware = middlewareList(route.middleware, 'middleware')

  return {
    path,
    methods,
    middleware,
    match(requestPath) {
      const parts = requestPath === '/' ? [''] : requestPath.slice(1).split('/')
      const params: Record<string, string> = {}
      for (let i = 0; i < segments.length; i++) {
        const segment = segments[i]!
        if (segment.kind === 'rest') return params // zero or more segments, empty ones included
        const part = parts[i]
        if (part === undefined) return undefined
        if (segment.kind === 'literal') {
          if (part !== segment.text) return undefined
          continue
        }
        if (part === '' || (segment.allowed && !segment.allowed.has(part))) return undefined
        const decoded = decodeParam(part)
        if (decoded === undefined) return undefined
        params[segment.name] = decoded
      }
      return parts.length === segments.length ? params : undefined
    },
  }
}
