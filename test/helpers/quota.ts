// Shared pieces of the quota tests: store-level constants, and a safe fetch with quotas on a loopback server.
import type { AuditEvent, QuotaCheck, QuotaRule, SafeFetchOptions } from '../../src/index.js'
import { UNAVAILABLE_RETRY_MS } from '../../src/quota/types.js'
import { tableResolver, testFetch } from './fetch.js'
import type { TestServer } from './servers.js'

/** What a store answers when it cannot answer. */
export const UNAVAILABLE = { granted: false, index: -1, kind: 'unavailable', retryAfterMs: UNAVAILABLE_RETRY_MS }
/** A signal that never aborts. */
export const never = new AbortController().signal
/** A lease with a minute to live. */
export const lease = (id: string) => ({ id, ttlMs: 60_000 })
/** One check with a requests quota of `limit` per minute. */
export const requests = (limit: number): QuotaCheck[] => [{ key: 'k', requests: { limit, windowMs: 60_000 } }]

/**
 * A safe fetch on `server` with these quotas: `api.test` and `other.test` resolve to 127.0.0.1 and
 * have a rule each. `url(path, host)` is a URL on the server; the events and the names the
 * resolver was asked for come with it.
 */
export function quotaFetchOn(server: TestServer, quotas: QuotaRule[], extra: SafeFetchOptions = {}) {
  const events: AuditEvent[] = []
  const resolver = tableResolver({ 'api.test': ['127.0.0.1'], 'other.test': ['127.0.0.1'] })
  const fetch = testFetch({
    rules: [{ host: 'api.test', httpsOnly: false, port: server.port }, { host: 'other.test', httpsOnly: false, port: server.port }],
    resolver,
    quotas,
    onRequest: (e) => events.push(e),
    ...extra,
  })
  const url = (path = '/', host = 'api.test') => `http://${host}:${server.port}${path}`
  return { fetch, events, resolver, url }
}
