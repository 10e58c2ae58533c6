// Redirect rules as pure functions: which statuses redirect, and how method, body and headers change.
import type { NormalisedUrl } from '../url/normalise.js'
import { CREDENTIAL_HEADERS, type HeaderList } from './headers.js'

/** RFC 9110 §15.4: the statuses that carry a Location to follow. */
export const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308])

export interface RedirectedRequest {
  readonly method: string
  readonly headers: HeaderList
  readonly body: Uint8Array | undefined
}

// Headers that describe a body; dropped when the redirect turns the request into a GET.
const BODY_HEADERS = new Set(['content-type', 'content-encoding', 'content-language', 'content-location'])

/**
 * The request for the next hop. 303 turns anything but HEAD into GET (RFC 9110 §15.4.4), and so
 * do 301 and 302 after POST (§15.4.2-3, as browsers do); 307 and 308 keep method and body.
 * Credentials are dropped on a cross-origin hop (scheme, host or port changed).
 */
export function redirectedRequest(
  status: number,
  from: NormalisedUrl,
  to: NormalisedUrl,
  request: RedirectedRequest,
): RedirectedRequest {
  const toGet =
    (status === 303 && request.method !== 'HEAD') || ((status === 301 || status === 302) && request.method === 'POST')
  const crossOrigin = from.origin !== to.origin
  const headers = request.headers.filter(
    ([name]) => !(crossOrigin && CREDENTIAL_HEADERS.has(name)) && !(toGet && BODY_HEADERS.has(name)),
  )
  return toGet ? { method: 'GET', headers, body: undefined } : { method: request.method, headers, body: request.body }
}
