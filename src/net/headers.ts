// Checks the headers a capsule (and host middleware) may set, and turns raw response headers into the wire's two forms.
import { CapsuleHostError } from '../errors.js'
import { TOKEN } from '../wire/schemas.js'

export type HeaderList = Array<[name: string, value: string]>

/**
 * Headers only the host sets: framing, routing and hop-by-hop (RFC 9110 §7.6.1, RFC 9112 §6-7),
 * plus `expect` and `http2-settings`, which change the exchange itself. `proxy-*` is refused by prefix.
 */
export const HOST_ONLY_HEADERS: ReadonlySet<string> = new Set([
  'host',
  'connection',
  'content-length',
  'transfer-encoding',
  'te',
  'upgrade',
  'keep-alive',
  'trailer',
  'expect',
  'http2-settings',
])

/**
 * Headers that ask the upstream to act on another method or path than the one the rules judged:
 * the method overrides honoured by ASP.NET, Express `method-override`, Symfony, Laravel and
 * others, and the URL overrides of IIS URL Rewrite and Symfony. From a capsule they would turn a
 * GET on a GET-only route into a DELETE, or `/public` into `/admin`, so a capsule may never set
 * them, whatever the route allows. Host middleware may (see `checkCapsuleHeaders`).
 */
export const OVERRIDE_HEADERS: ReadonlyMap<string, 'method' | 'path'> = new Map([
  ['x-http-method-override', 'method'],
  ['x-http-method', 'method'],
  ['x-method-override', 'method'],
  ['x-original-url', 'path'],
  ['x-rewrite-url', 'path'],
])

/**
 * W3C trace context (traceparent, tracestate): the host's telemetry sets it when it propagates
 * traces, so a capsule can never forge its place in the host's traces. Host middleware may set it.
 */
export const TRACE_CONTEXT_HEADERS: ReadonlySet<string> = new Set(['traceparent', 'tracestate'])

/** Credentials dropped on a cross-origin redirect (as undici's `shouldRemoveHeader`). */
export const CREDENTIAL_HEADERS: ReadonlySet<string> = new Set(['authorization', 'cookie', 'proxy-authorization'])

// RFC 9110 §5.5: field values are visible ASCII, obs-text, space and tab; never CR, LF or NUL.
const INVALID_VALUE = /[\u0000-\u0008\u000a-\u001f\u007f]/

function invalid(message: string): CapsuleHostError {
  return new CapsuleHostError('invalid_request', message)
}

/**
 * Validates the capsule's headers and returns them as a list with lower-case names, repeats kept
 * in order. `accept-encoding` is dropped: the host asks for identity bodies itself.
 */
export function checkRequestHeaders(headers: Record<string, string> | Array<[string, string]> | undefined): HeaderList {
  const entries = headers === undefined ? [] : Array.isArray(headers) ? headers : Object.entries(headers)
  const list: HeaderList = []
  for (const [rawName, value] of entries) {
    if (!TOKEN.test(rawName)) throw invalid(`header name ${JSON.stringify(rawName)} is not a valid token`)
    const name = rawName.toLowerCase()
    if (HOST_ONLY_HEADERS.has(name) || name.startsWith('proxy-')) {
      throw invalid(`header "${name}" is set by the host; a capsule may not set it`)
    }
    if (INVALID_VALUE.test(value) || /[^\u0000-\u00ff]/.test(value)) {
      throw invalid(`header "${name}" has a value with control or non-Latin-1 characters`)
    }
    if (name === 'accept-encoding') continue
    list.push([name, value.trim()])
  }
  return list
}

/**
 * The checks of `checkRequestHeaders`, plus those that apply to the capsule's own headers only:
 * no method or URL override (`OVERRIDE_HEADERS`), no trace context (`TRACE_CONTEXT_HEADERS`). Headers host middleware sets are checked with
 * `checkRequestHeaders` alone.
 */
export function checkCapsuleHeaders(headers: Record<string, string> | Array<[string, string]> | undefined): HeaderList {
  const list = checkRequestHeaders(headers)
  for (const [name] of list) {
    const overrides = OVERRIDE_HEADERS.get(name)
    if (overrides) {
      throw invalid(`header "${name}" would make the upstream use another ${overrides} than the one the rules judged; a capsule may not set it`)
    }
    if (TRACE_CONTEXT_HEADERS.has(name)) throw invalid(`header "${name}" is trace context, set by the host's telemetry; a capsule may not set it`)
  }
  return list
}

/** Turns undici's raw header buffers into `[name, value]` pairs with lower-case names, in order. */
export function rawHeaderPairs(raw: ReadonlyArray<Buffer | string>): HeaderList {
  const pairs: HeaderList = []
  for (let i = 0; i + 1 < raw.length; i += 2) {
    pairs.push([raw[i]!.toString('latin1').toLowerCase(), raw[i + 1]!.toString('latin1')])
  }
  return pairs
}

/** The wire's `headers` object: one entry per name, repeats joined with ", " (see `rawHeaders`). */
export function headerObject(pairs: HeaderList): Record<string, string> {
  // A plain object built in place (a copy out of a null-prototype one took most of the time);
  // `__proto__` is a valid header name, so it is defined as an own property, never assigned.
  const object: Record<string, string> = {}
  for (const [name, value] of pairs) {
    const joined = Object.hasOwn(object, name) ? `${object[name]}, ${value}` : value
    if (name === '__proto__') Object.defineProperty(object, name, { value: joined, enumerable: true, writable: true, configurable: true })
    else object[name] = joined
  }
  return object
}
