// The safe-fetch flags both commands take (--allow, --rules, --resolve, --allow-address) turned into createSafeFetch options.
import type { Rule } from '../gate/rules.js'
import { readText, UsageError } from './usage.js'

/** The parseArgs options of these flags (and -h), shared by run and explain. */
export const FETCH_FLAG_OPTIONS = {
  allow: { type: 'string', multiple: true },
  rules: { type: 'string' },
  resolve: { type: 'string', multiple: true },
  'allow-address': { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const


export interface FetchFlags {
  allow?: string[]
  rules?: string
  resolve?: string[]
  'allow-address'?: string[]
}

/** One --allow: its origin rule, and the route its path names (none for a bare origin or "/"). */
interface Allowed {
  readonly rule: Rule
  readonly path: string | undefined
}

/**
 * `api.example.com` allows https on 443; a URL such as `http://localhost:8080` allows that scheme
 * and port; a path (`https://api.example.com/v1/**`) becomes a route, never dropped.
 */
function allowedFor(allow: string): Allowed {
  const spelled = allow.includes('://') || !allow.includes('/') ? allow : `https://${allow}`
  const hostAndPort = /^([^:[\]]+):(\d+)$/.exec(spelled)
  if (hostAndPort) throw new UsageError(`--allow ${allow}: give a port as a URL, such as https://${hostAndPort[1]}:${hostAndPort[2]} (or http://...)`)
  if (!spelled.includes('://')) return { rule: { host: allow }, path: undefined }
  let url: URL
  try {
    url = new URL(spelled)
  } catch {
    throw new UsageError(`--allow ${allow}: not a host or URL`)
  }
  if (url.search !== '' || url.hash !== '' || spelled.endsWith('?') || spelled.endsWith('#')) {
    throw new UsageError(`--allow ${allow}: a query or fragment cannot be allowed; give the origin and, for a route, a path`)
  }
  const path = url.pathname === '/' ? undefined : url.pathname
  const star = path?.split('/').find((segment) => segment.includes('*') && segment !== '**')
  if (path !== undefined && star !== undefined) {
    const base = path.slice(0, path.indexOf(star)).replace(/\/$/, '')
    throw new UsageError(
      `--allow ${allow}: "${star}" is not a route pattern; use ${base}/:name for one segment, or ${base}/** for every path under ${base || '/'}`,
    )
  }
  const port = url.port === '' ? undefined : Number(url.port)
  return { rule: { host: url.hostname, httpsOnly: url.protocol === 'https:', ...(port ? { port } : {}) }, path }
}

/** The --allow rules, one per origin: the routes of one origin's paths together, or every path when one --allow gave none. */
function allowRules(values: string[]): Rule[] {
  const origins = new Map<string, { rule: Rule; paths: string[] | undefined }>()
  for (const { rule, path } of values.map(allowedFor)) {
    // One key per origin set, however it was spelled: `api.test` and `https://api.test:443/x` are the same.
    const https = rule.httpsOnly !== false
    const key = JSON.stringify([rule.host, https, rule.port ?? (https ? 443 : 'scheme default')])
    const seen = origins.get(key)
    if (!seen) origins.set(key, { rule, paths: path === undefined ? undefined : [path] })
    else if (seen.paths && path !== undefined) seen.paths.push(path)
    else seen.paths = undefined
  }
  return [...origins.values()].map(({ rule, paths }) => (paths ? { ...rule, routes: paths.map((path) => ({ path })) } : rule))
}

function rulesFrom(values: FetchFlags): Rule[] {
  const rules = allowRules(values.allow ?? [])
  if (values.rules) {
    let parsed: unknown
    try {
      parsed = JSON.parse(readText(values.rules, 'rules file'))
    } catch (error) {
      if (error instanceof UsageError) throw error
      throw new UsageError(`--rules ${values.rules}: not valid JSON`)
    }
    const list = Array.isArray(parsed) ? parsed : (parsed as { rules?: unknown })?.rules
    if (!Array.isArray(list)) throw new UsageError(`--rules ${values.rules}: expected an array of rules or { "rules": [...] }`)
    rules.push(...(list as Rule[]))
  }
  return rules
}

/** `NAME=VALUE` pairs (split at the first "="), later ones winning. */
export function pairs(entries: string[] | undefined, flag: string, what: string): Record<string, string> | undefined {
  if (!entries?.length) return undefined
  // No prototype: `__proto__=x` is a name like any other, not the object's prototype.
  const out: Record<string, string> = Object.create(null)
  for (const entry of entries) {
    const at = entry.indexOf('=')
    if (at <= 0) throw new UsageError(`--${flag} ${entry}: expected ${what}`)
    out[entry.slice(0, at)] = entry.slice(at + 1)
  }
  return out
}

function resolverFrom(entries: string[] | undefined) {
  if (!entries?.length) return undefined
  const table = new Map<string, string[]>()
  for (const entry of entries) {
    const [name, address] = entry.split('=')
    if (!name || !address) throw new UsageError(`--resolve ${entry}: expected NAME=IP`)
    table.set(name.toLowerCase(), [...(table.get(name.toLowerCase()) ?? []), address])
  }
  return async (hostname: string) => {
    const answer = table.get(hostname)
    if (!answer) throw new Error(`${hostname} is not in --resolve`)
    return answer
  }
}

/** The safe fetch options both commands take: rules, --resolve and --allow-address. */
export function fetchOptions(values: FetchFlags) {
  const resolver = resolverFrom(values.resolve)
  return {
    rules: rulesFrom(values),
    addressPolicy: { unsafeAllow: values['allow-address'] ?? [] },
    ...(resolver ? { resolver } : {}),
  }
}
