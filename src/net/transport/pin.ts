// Pins a hop to its checked address: the dispatch origin is the address; Host and TLS servername keep the name.
import type { Dispatcher } from 'undici'
import type { Hop } from './types.js'

/** The dispatch origin: the checked address, so the pool key and the socket are that address. */
export function pinnedOrigin(hop: Hop): string {
  const address = hop.address.family === 6 ? `[${hop.address.address}]` : hop.address.address
  return `${hop.url.protocol}//${address}:${hop.url.port}`
}

/** undici dispatch options for `hop`, connecting only to `hop.address`; undici's own timers are off. */
export function pinnedDispatchOptions(hop: Hop): Dispatcher.DispatchOptions {
  const headers: string[] = ['host', hop.url.host, 'accept-encoding', 'identity']
  for (const [name, value] of hop.headers) headers.push(name, value)
  return {
    origin: pinnedOrigin(hop),
    path: hop.url.path,
    method: hop.method as Dispatcher.HttpMethod,
    headers,
    body: hop.body === undefined ? null : hop.body,
    // SNI and certificate checks use the name, never the pinned address.
    servername: hop.url.ipLiteral === undefined ? hop.url.hostname : undefined,
    headersTimeout: 0,
    bodyTimeout: 0,
  } as Dispatcher.DispatchOptions
}
