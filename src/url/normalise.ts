// Normalises a capsule-supplied URL to the one form that is matched, checked and sent, or refuses it.
import { CapsuleHostError } from '../errors.js'
import { PureCache } from '../pure-cache.js'

/** A URL after normalisation: every field is exactly what the gates see and what goes on the wire. */
export interface NormalisedUrl {
  /** `scheme://host[:port]/path?query`: no userinfo, no fragment, no trailing dot on the host. */
  readonly href: string
  readonly protocol: 'http:' | 'https:'
  /** Lower-case, punycode, no trailing dot; IPv6 literals in brackets, as in a URL. */
  readonly hostname: string
  /** `hostname[:port]` as sent in the Host header (the port only when it is not the default). */
  readonly host: string
  /** The effective port (80 or 443 when the URL names none). */
  readonly port: number
  /** Path and query, byte for byte as they are matched and sent. */
  readonly path: string
  /** `scheme://host[:port]` */
  readonly origin: string
  /** The address when the host is an IP literal (IPv6 without brackets), else undefined. */
  readonly ipLiteral: string | undefined
}

const DEFAULT_PORTS = { 'http:': 80, 'https:': 443 } as const

// Refusals that apply to the path of a URL as the capsule wrote it, before the WHATWG parser
// resolves or rewrites anything. Each one would let the matched path differ from what an
// upstream server decodes. The query string is not checked: `?next=%2Fhome` is ordinary.
const RAW_PATH_REFUSALS: ReadonlyArray<readonly [RegExp, string]> = [
  [/%2f/i, 'an encoded slash (%2F) in the path'],
  [/%5c/i, 'an encoded backslash (%5C) in the path'],
  [/%25[0-9a-f]{2}/i, 'double percent-encoding (%25XX) in the path'],
  [/%00/, 'an encoded NUL (%00) in the path'],
  [/%(?![0-9a-f]{2})/i, 'a malformed percent-escape in the path'],
]

// A dot-segment, literal or encoded. Tomcat, Jetty and Spring strip path parameters (from the
// first `;` of a segment) before resolving dot-segments, so `..;x=1` is `..` to them, while the
// WHATWG parser and our route matcher see a plain segment: `/public/..;/admin` would match
// `/public/**` and reach `/admin`. `.;x` is refused too: to those servers it is `.`, which takes
// no level, while we count it as a segment that a later `..` removes, so `/public/.;/../admin`
// is `/public/admin` here and `/admin` there. The `;` may also be encoded (`..%3B`): a proxy or
// framework that decodes before it strips parameters reads `..;` again. Only segments whose part
// before the first `;` or `%3B` is a dot-segment are refused; `/a;b`, `/..a;`, `/...;`, `/;` and
// `/a%3Bb` are ordinary segments. (A whole segment that is an encoded dot-segment is refused on
// its own: the parser resolves `%2e%2e` as `..`, but an upstream may not.)
const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i

/** Where a segment's path parameters start: its first `;`, literal or encoded. */
const PARAMETER_START = /;|%3b/i

function refuse(reason: string): never {
  throw new CapsuleHostError('invalid_request', `invalid url: ${reason}`)
}

/**
 * Checks the path of a URL or relative reference exactly as written. `reference` may be an
 * absolute URL, a network-path reference (`//host/p`) or a path (`/a/b`, `b`, `?q`).
 */
export function checkRawReference(reference: string): void {
  // C0 controls, space and DEL: the WHATWG parser silently strips or drops some of them.
  if (/[\u0000-\u0020\u007f]/.test(reference)) refuse('control characters or spaces are not allowed')
  // A backslash is read as a slash in http(s) URLs; refuse it rather than guess what was meant.
  if (reference.includes('\\')) refuse('backslashes are not allowed')
  let rest = reference
  const scheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:/.exec(rest)
  if (scheme) rest = rest.slice(scheme[0].length)
  if (rest.startsWith('//')) {
    const authorityEnd = rest.slice(2).search(/[/?#]/)
    const authority = authorityEnd === -1 ? rest.slice(2) : rest.slice(2, 2 + authorityEnd)
    if (authority.includes('@')) refuse('credentials (user:password@) are not allowed in the URL')
    // `http:///x` would otherwise be read as host `x`: the parser skips the extra slashes.
    if (authority === '') refuse('the host is empty')
    rest = authorityEnd === -1 ? '' : rest.slice(2 + authorityEnd)
  }
  const pathEnd = rest.search(/[?#]/)
  const path = pathEnd === -1 ? rest : rest.slice(0, pathEnd)
  for (const [pattern, what] of RAW_PATH_REFUSALS) {
    if (pattern.test(path)) refuse(`${what} is not allowed`)
  }
  for (const segment of path.split('/')) {
    if (segment.includes('%') && DOT_SEGMENT.test(segment)) {
      refuse('an encoded dot-segment (%2E) in the path is not allowed')
    }
    const parameters = segment.search(PARAMETER_START)
    if (parameters !== -1 && DOT_SEGMENT.test(segment.slice(0, parameters))) {
      refuse('a dot-segment with path parameters (such as "..;", "..%3B" or ".;x=1") in the path is not allowed: servers that strip parameters resolve it as a dot-segment')
    }
  }
}

/** Parses, checks and normalises a URL; throws `invalid_request` with the reason. */
export function normaliseUrl(raw: string): NormalisedUrl {
  return NORMALISED.get(raw)
}

function normalise(raw: string): NormalisedUrl {
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(raw)?.[1]?.toLowerCase()
  if (scheme !== 'http' && scheme !== 'https') {
    refuse(scheme ? `scheme "${scheme}:" is not allowed; use http: or https:` : 'an absolute http(s) URL is required')
  }
  if (!raw.slice(scheme.length + 1).startsWith('//')) refuse('expected "//" after the scheme')
  checkRawReference(raw)

  let url: URL
  try {
    url = new URL(raw)
  } catch {
    refuse('not a valid URL')
  }
  if (url.username !== '' || url.password !== '') refuse('credentials (user:password@) are not allowed in the URL')

  let hostname = url.hostname
  if (hostname.endsWith('.')) hostname = hostname.slice(0, -1)
  if (hostname === '') refuse('the host is empty')
  if (!hostname.startsWith('[') && hostname.split('.').some((label) => label === '')) {
    refuse('the host has an empty label')
  }
  if (url.port === '0') refuse('port 0 is not allowed')

  const protocol = url.protocol as 'http:' | 'https:'
  const port = url.port === '' ? DEFAULT_PORTS[protocol] : Number(url.port)
  const host = url.port === '' ? hostname : `${hostname}:${url.port}`
  const path = resolveDotSegments(url.pathname) + url.search
  const origin = `${protocol}//${host}`
  // Frozen: the cache hands the same object to every request of this URL.
  return Object.freeze({
    href: origin + path,
    protocol,
    hostname,
    host,
    port,
    path,
    origin,
    ipLiteral: ipLiteralOf(hostname),
  })
}

/** URLs normalised recently, by their exact text (a refusal is never stored): about 1.4 µs saved a request. */
const NORMALISED = new PureCache(normalise, 2048, 2048)

/**
 * Removes the `.` and `..` segments the parser left in a pathname. The WHATWG parser resolves
 * them all, but an ada without the fix for ada-url/ada#935 (2.9.2, in Node 20.20.2) skips a path
 * in which a segment starts with a dot: `/public/.well-known/../../admin` came back as written, matched
 * `/public/**`, and reached `/admin` upstream. Same rules as the parser: a `..` never climbs above
 * the root, and a trailing `.` or `..` leaves a trailing slash. Encoded dot-segments never get
 * here (refused by `checkRawReference`).
 */
function resolveDotSegments(pathname: string): string {
  const segments = pathname.slice(1).split('/')
  if (!segments.some((segment) => segment === '.' || segment === '..')) return pathname
  const resolved: string[] = []
  segments.forEach((segment, i) => {
    const last = i === segments.length - 1
    if (segment === '..') resolved.pop()
    if (segment === '.' || segment === '..') {
      if (last) resolved.push('')
      return
    }
    resolved.push(segment)
  })
  return `/${resolved.join('/')}`
}

/** After WHATWG parsing every IPv4 spelling is a dotted quad and every IPv6 literal is bracketed. */
function ipLiteralOf(hostname: string): string | undefined {
  if (hostname.startsWith('[')) return hostname.slice(1, -1)
  if (/^\d{1,3}(?:\.\d{1,3}){3}$/.test(hostname)) return hostname
  return undefined
}

/** Resolves a redirect `Location` against the URL it came from, with the same checks. */
export function resolveLocation(location: string, base: NormalisedUrl): NormalisedUrl {
  // An absolute location gets exactly the checks of a capsule's URL: resolved against a base,
  // the parser would guess that `http:host` or `https:path` (no "//") meant something.
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(location)) return normaliseUrl(location)
  checkRawReference(location)
  let resolved: URL
  try {
    resolved = new URL(location, base.href)
  } catch {
    refuse('the redirect location is not a valid URL')
  }
  return normaliseUrl(resolved.href)
}

/** Origin and path with any query string replaced by `?…`: how URLs appear in messages and logs. */
export function redactedUrl(url: Pick<NormalisedUrl, 'origin' | 'path'>): string {
  const query = url.path.indexOf('?')
  return url.origin + (query === -1 ? url.path : `${url.path.slice(0, query)}?…`)
}
