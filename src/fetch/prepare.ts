// Turns a validated wire request into the normalised request the gates judge and the terminal sends.
import { CapsuleHostError } from '../errors.js'
import { effectiveLimits, type EffectiveLimits, type Limits } from '../limits.js'
import { checkCapsuleHeaders, type HeaderList } from '../net/headers.js'
import { parseIntegrity, type IntegrityMetadata } from '../net/integrity.js'
import { normaliseUrl, type NormalisedUrl } from '../url/normalise.js'
import { bodyBytes } from '../wire/parse.js'
import type { HeaderForm, HttpRequest } from '../wire/schemas.js'

export type Mode = 'buffered' | 'stream'

export interface PreparedRequest {
  readonly mode: Mode
  /** The capsule's request as validated (what middleware sees, frozen, as `ctx.req.raw`). */
  readonly raw: Readonly<HttpRequest>
  readonly url: NormalisedUrl
  readonly method: string
  readonly headers: HeaderList
  readonly body: Uint8Array | undefined
  readonly responseBody: 'text' | 'base64'
  /** How a capsule's wire reply carries the headers (the host's API returns both forms). */
  readonly responseHeaders: HeaderForm
  readonly redirect: 'manual' | 'follow' | 'error'
  readonly integrity: IntegrityMetadata | undefined
  readonly limits: EffectiveLimits
}

// TRACE echoes the request, headers injected by the host included; CONNECT opens a tunnel.
const REFUSED_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK'])

/**
 * `redirectDefault` is what a request that does not say gets: `manual` for the capsule-host ABI,
 * `follow` for Extism's (whose request JSON has no options), when the host allows redirects.
 */
export function prepareRequest(
  request: HttpRequest,
  limits: Readonly<Limits>,
  maxRedirects: number,
  mode: Mode,
  redirectDefault: 'manual' | 'follow' = 'manual',
): PreparedRequest {
  const method = request.method ?? 'GET'
  if (REFUSED_METHODS.has(method)) throw new CapsuleHostError('invalid_request', `method ${method} is not allowed`)
  const options = request.options?.redirect === undefined && redirectDefault === 'follow' ? { ...request.options, redirect: redirectDefault } : request.options
  const integrity = options?.integrity
  if (integrity !== undefined && mode === 'stream') {
    throw new CapsuleHostError('invalid_request', 'options.integrity is checked on buffered bodies only; use http_request')
  }
  return {
    mode,
    raw: request,
    url: normaliseUrl(request.url),
    method,
    headers: checkCapsuleHeaders(request.headers),
    body: bodyBytes(request),
    responseBody: request.responseBody ?? 'text',
    responseHeaders: request.responseHeaders ?? 'list',
    redirect: options?.redirect ?? 'manual',
    integrity: integrity === undefined ? undefined : parseIntegrity(integrity),
    limits: effectiveLimits(limits, maxRedirects, options, mode),
  }
}
