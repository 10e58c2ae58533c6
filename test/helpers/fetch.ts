// Builds safe fetches for tests: test names resolve to loopback, and only that address is allowed.
import {
  createSafeFetch,
  type BufferedResponse,
  type ErrorReply,
  type SafeFetch,
  type SafeFetchOptions,
  type WireError,
} from '../../src/index.js'
import { TEST_CA } from './servers.js'

/** A resolver from a fixed table that records every name it is asked for. */
export function tableResolver(table: Record<string, string[] | (() => string[])>) {
  const asked: string[] = []
  const resolver = async (hostname: string) => {
    asked.push(hostname)
    const entry = table[hostname]
    if (entry === undefined) throw Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' })
    return typeof entry === 'function' ? entry() : entry
  }
  return Object.assign(resolver, { asked })
}

const made: SafeFetch[] = []

/**
 * A safe fetch wired for loopback tests: `api.test`, `other.test` and `redirect.test` map to
 * 127.0.0.1, `addressPolicy.allow` is exactly 127.0.0.1/32, and the fixture CA is trusted.
 */
export function testFetch(options: SafeFetchOptions = {}): SafeFetch {
  const fetch = createSafeFetch({
    resolver: tableResolver({ 'api.test': ['127.0.0.1'], 'other.test': ['127.0.0.1'], 'redirect.test': ['127.0.0.1'] }),
    addressPolicy: { allow: ['127.0.0.1/32'] },
    tls: { ca: TEST_CA },
    ...options,
  })
  made.push(fetch)
  return fetch
}

/** Closes every safe fetch made by testFetch; call from afterAll. */
export async function closeAllFetches(): Promise<void> {
  await Promise.all(made.splice(0).map((f) => f.close()))
}

export const ctx = (capsuleId = 'test-capsule', signal?: AbortSignal) => ({ capsuleId, ...(signal ? { signal } : {}) })

/** The response of a reply that must have succeeded; throws with the error otherwise. */
export function ok(reply: BufferedResponse | ErrorReply): BufferedResponse {
  if ('error' in reply) throw new Error(`expected a response, got ${JSON.stringify(reply.error)}`)
  return reply
}

/** The error of a reply, or undefined when it succeeded. */
export const errorOf = (reply: object): WireError | undefined =>
  'error' in reply ? (reply as ErrorReply).error : undefined
