// What a request's audit event says as OpenTelemetry attributes: HTTP client semconv plus capsule-host's own, spans and metrics.
import type { AuditEvent } from '../audit.js'

/** Attribute values as OpenTelemetry takes them (no arrays needed here). */
export type Attributes = Record<string, string | number | boolean>

/** Methods the HTTP semantic conventions know; any other is `_OTHER` (the original goes on the span only). */
const KNOWN_METHODS: ReadonlySet<string> = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'QUERY', 'TRACE'])

/** The semconv `http.request.method`: a known method as it is, anything else (or none) `_OTHER`. */
export function semconvMethod(method: string | undefined): string {
  return method !== undefined && KNOWN_METHODS.has(method) ? method : '_OTHER'
}

/** The span's name: the method, or `HTTP` when it is unknown (semconv). */
export function requestSpanName(event: Readonly<AuditEvent>): string {
  const method = semconvMethod(event.method)
  return method === '_OTHER' ? 'HTTP' : method
}

/** The semconv `error.type`: our wire code, else the status of a 4xx/5xx answer, else none. */
export function errorType(event: Readonly<AuditEvent>): string | undefined {
  if (event.code !== undefined) return event.code
  if (event.status !== undefined && event.status >= 400) return String(event.status)
  return undefined
}

/**
 * `server.address` and `server.port` of the event's URL: the safe fetch's normalised origin
 * (`scheme://host[:port]`, IPv6 in brackets) and path, so it is read by hand (cheaper than `new URL`).
 */
function serverAttributes(url: string): Attributes {
  const scheme = url.indexOf('://')
  if (scheme === -1) return {}
  const pathAt = url.indexOf('/', scheme + 3)
  const authority = url.slice(scheme + 3, pathAt === -1 ? url.length : pathAt)
  const colon = authority.lastIndexOf(':')
  const hasPort = colon > authority.lastIndexOf(']')
  const host = hasPort ? authority.slice(0, colon) : authority
  const port = hasPort ? Number(authority.slice(colon + 1)) : url.startsWith('https:') ? 443 : 80
  // An IPv6 literal's brackets are not part of the address.
  const address = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  return { 'server.address': address, 'server.port': port }
}

/** Sets `key` to `value` when it is defined. */
function put(attributes: Attributes, key: string, value: string | number | undefined): void {
  if (value !== undefined) attributes[key] = value
}

/** Everything a request span carries at its end. Never a header value, a body, a query or a secret. */
export function requestSpanAttributes(event: Readonly<AuditEvent>): Attributes {
  const method = semconvMethod(event.method)
  const attributes: Attributes = {
    'http.request.method': method,
    'capsule_host.capsule.id': event.capsuleId,
    'capsule_host.request.id': event.requestId,
    'capsule_host.request.kind': event.kind,
    'capsule_host.abi': event.abi,
    'capsule_host.decision': event.allowed ? 'allowed' : 'refused',
    'capsule_host.decided_by': event.decidedBy,
    'capsule_host.response.bytes': event.bytesIn,
    'capsule_host.request.bytes': event.bytesOut,
    'capsule_host.redirects': event.redirects,
  }
  if (method === '_OTHER') put(attributes, 'http.request.method_original', event.method)
  if (event.url !== undefined) Object.assign(attributes, { 'url.full': event.url }, serverAttributes(event.url))
  put(attributes, 'http.response.status_code', event.status)
  put(attributes, 'error.type', errorType(event))
  put(attributes, 'capsule_host.route', event.route)
  put(attributes, 'capsule_host.reason', event.reason)
  put(attributes, 'capsule_host.address.class', event.addressClass)
  put(attributes, 'capsule_host.timeout.phase', event.phase)
  put(attributes, 'capsule_host.retry_after_ms', event.retryAfterMs)
  return attributes
}

/**
 * The attributes of the request count and duration metrics: bounded by design (decision, code,
 * kind, ABI, semconv method, status), never the URL, the server or the capsule id.
 */
export function requestMetricAttributes(event: Readonly<AuditEvent>): Attributes {
  const attributes: Attributes = {
    'capsule_host.decision': event.allowed ? 'allowed' : 'refused',
    'capsule_host.code': event.code ?? 'none',
    'capsule_host.request.kind': event.kind,
    'capsule_host.abi': event.abi,
    'http.request.method': semconvMethod(event.method),
  }
  put(attributes, 'http.response.status_code', event.status)
  put(attributes, 'error.type', errorType(event))
  return attributes
}
