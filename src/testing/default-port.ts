// defaultPortRewrite: a request for a mock upstream's name on its scheme's default port goes on to that upstream's own port.
import type { Middleware } from '../index.js'
import type { Upstreams } from './upstreams.js'

/** The default port of an upstream's scheme: 443 for TLS, 80 for plain HTTP. */
export const defaultPortOf = (tls: boolean): number => (tls ? 443 : 80)

/**
 * A global middleware for a safe fetch wired to `upstreams`: a request for an upstream's name on
 * its scheme's default port (`https://api.test/x`, no port) is sent to the upstream's own port, so
 * a capsule written against a real API reaches the mock unchanged. The new URL is judged again by
 * the gates, so the rules must allow the name on both ports (createTestHost's do); the audit event
 * keeps the URL the capsule asked for. Any other request passes untouched.
 */
export function defaultPortRewrite(upstreams: Upstreams): Middleware {
  const names = new Set(upstreams.names)
  return async (ctx, next) => {
    const url = new URL(ctx.req.url)
    if (names.has(url.hostname) && url.port === '') {
      const upstream = upstreams.upstream(url.hostname)
      if (url.protocol === (upstream.tls ? 'https:' : 'http:')) {
        url.port = String(upstream.port)
        ctx.req.setUrl(url.href)
      }
    }
    return next()
  }
}
