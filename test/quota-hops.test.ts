// Quotas across a request's life: bytes of failed bodies, redirect hops, reserved ids, keys only for allowed hops, window and byte bounds as documented (regressions of the quota review).
import type { ServerResponse } from 'node:http'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { memoryQuotaStore, type Middleware, type QuotaRule, type SafeFetchOptions } from '../src/index.js'
import { redisQuotaStore } from '../src/quota/redis-store.js'
import { hasRedis, testRedis } from './helpers/redis-server.js'
import { closeAllFetches, ctx, errorOf, ok } from './helpers/fetch.js'
import { quotaFetchOn } from './helpers/quota.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'

let server: TestServer
/** Responses the upstream is holding (head and 1000 bytes written), ended when the test says. */
const held: ServerResponse[] = []
beforeAll(async () => {
  server = await startServer((req, res) => {
    const path = req.url ?? '/'
    if (path === '/chunky') {
      // 1200 bytes, chunked (no content-length): the host reads them before its cap refuses.
      res.write('a'.repeat(600))
      res.end('b'.repeat(600))
    } else if (path === '/half-then-reset') {
      res.write('c'.repeat(1200), () => setImmediate(() => res.socket?.destroy()))
    } else if (path === '/to-other') {
      res.writeHead(302, { location: `http://other.test:${server.port}/` })
      res.end()
    } else if (path === '/held-1000') {
      res.writeHead(200, { 'content-length': '1000' })
      res.write('h'.repeat(500))
      held.push(res)
    } else res.end('ok')
  })
})
afterAll(async () => {
  await closeAllFetches()
  await closeAllServers()
})

const quotaFetch = (quotas: QuotaRule[], extra: SafeFetchOptions = {}) => quotaFetchOn(server, quotas, extra)

const passThrough: Middleware = async (_c, next) => next()

describe('response bytes are charged for what came off the wire, also when the body failed part-way', () => {
  test.each<[string, string, object, string, SafeFetchOptions]>([
    ['too_large (the capsule lowered maxResponseBytes)', '/chunky', { maxResponseBytes: 700 }, 'too_large', {}],
    ['too_large through a middleware', '/chunky', { maxResponseBytes: 700 }, 'too_large', { middleware: [passThrough] }],
    ['the upstream resets mid-body', '/half-then-reset', {}, 'network', {}],
  ])('%s', async (_name, path, options, code, extra) => {
    const { fetch, events, url } = quotaFetch([{ key: 'capsule', id: 'bytes', responseBytes: { limit: 1000, windowMs: 60_000 } }], extra)
    expect(errorOf(await fetch.request({ url: url(path), options }, ctx('b')))?.code).toBe(code)
    // The host read well over 700 bytes of that body off the wire ...
    expect(events[0]!.bytesIn).toBeGreaterThan(700)
    // ... so the 1000-byte window is used up and the next request is refused.
    expect(errorOf(await fetch.request({ url: url('/') }, ctx('b')))).toMatchObject({ code: 'rate_limited', message: expect.stringContaining('(response bytes: 1000 per 60000 ms)') })
  })
})

describe('a redirect hop takes the perOrigin quota of its new origin before it is resolved', () => {
  test('the hop to other.test is refused by other.test\'s quota and never reaches it', async () => {
    const { fetch, url } = quotaFetch([{ key: 'capsule', id: 'origin', perOrigin: true, requests: { limit: 1, windowMs: 60_000 } }], { maxRedirects: 3 })
    const toOther = () => server.requests.filter((r) => r.headers.host === `other.test:${server.port}`).length
    const before = toOther()
    ok(await fetch.request({ url: url('/', 'other.test') }, ctx('r')))
    expect(errorOf(await fetch.request({ url: url('/', 'other.test') }, ctx('r')))?.code).toBe('rate_limited')
    // Same origin, one hop later: other.test's quota (1 per minute) should refuse this hop.
    const redirected = await fetch.request({ url: url('/to-other'), options: { redirect: 'follow' } }, ctx('r'))
    expect(toOther() - before).toBe(1)
    expect(errorOf(redirected)?.code).toBe('rate_limited')
  })
})

describe('quota ids', () => {
  test('"manifest" is reserved for the quota of a capsule\'s manifest', () => {
    expect(() => quotaFetch([{ key: 'capsule', id: 'manifest', requests: { limit: 4, windowMs: 60_000 } }])).toThrow(
      new TypeError('createSafeFetch: quotas[0].id: "manifest" is reserved for the quota of a capsule\'s manifest'),
    )
  })
})

describe('the byte window can go past its limit by what the requests in flight receive (docs/fleet.md)', () => {
  test('three requests in flight at once are all admitted and each charged at its end: 3000 bytes in a 1000-byte window, then refused', async () => {
    const store = memoryQuotaStore()
    const { fetch, events, url } = quotaFetch([{ key: 'capsule', id: 'bytes', responseBytes: { limit: 1000, windowMs: 60_000 } }], { quotaStore: store })
    const pending = [0, 1, 2].map(() => fetch.request({ url: url('/held-1000') }, ctx('o')))
    while (held.length < 3) await new Promise((resolve) => setImmediate(resolve))
    for (const res of held.splice(0)) res.end('h'.repeat(500))
    for (const reply of await Promise.all(pending)) ok(reply)
    expect(events.reduce((sum, e) => sum + e.bytesIn, 0)).toBe(3000)
    expect(errorOf(await fetch.request({ url: url('/') }, ctx('o')))?.code).toBe('rate_limited')
  })
})

describe('a hop the rules deny takes no quota, so a capsule cannot make store keys for denied origins', () => {
  test('2,000 denied requests to made-up hosts: no DNS, no connection, no key asked of the store', async () => {
    const inner = memoryQuotaStore()
    const keys = new Set<string>()
    const recording = {
      acquire: (checks: Parameters<typeof inner.acquire>[0], lease: Parameters<typeof inner.acquire>[1], signal: AbortSignal) => {
        for (const check of checks) keys.add(check.key)
        return inner.acquire(checks, lease, signal)
      },
      release: inner.release,
      renew: inner.renew!,
      close: inner.close,
    }
    const { fetch, resolver, url } = quotaFetch([{ key: 'capsule', id: 'origin', perOrigin: true, requests: { limit: 10, windowMs: 3_600_000 } }], { quotaStore: recording })
    const connections = server.connections
    for (let i = 0; i < 2000; i++) expect(errorOf(await fetch.request({ url: url('/', `h${i}.denied.test`) }, ctx('minter')))?.code).toBe('denied')
    expect(resolver.asked).toEqual([])
    expect(server.connections).toBe(connections)
    expect(keys.size).toBe(0)
  })
})

describe('the same against a real Redis', () => {
  test.skipIf(!hasRedis)('500 denied requests to made-up origins leave no key in Redis', async () => {
    const redis = await testRedis()
    const prefix = `review-${process.pid}-${Date.now()}:`
    const store = redisQuotaStore({ url: redis.url, prefix, timeoutMs: 2000 })
    const admin = new Redis(redis.url)
    try {
      const { fetch } = quotaFetch([{ key: 'capsule', id: 'origin', perOrigin: true, requests: { limit: 10, windowMs: 3_600_000 } }], { quotaStore: store })
      for (let i = 0; i < 500; i++) expect(errorOf(await fetch.request({ url: `http://h${i}.denied.test:${server.port}/` }, ctx('minter')))?.code).toBe('denied')
      const keys = await admin.keys(`${prefix}*`)
      expect(keys).toEqual([])
    } finally {
      admin.disconnect()
      await store.close()
      await redis.close()
    }
  })
})

describe('fixed windows, as docs/fleet.md says', () => {
  test('a span of windowMs that straddles two windows holds 2 x limit - 1 requests', async () => {
    const clock = { now: 0 }
    const store = memoryQuotaStore({ now: () => clock.now })
    const check = { key: 'k', requests: { limit: 3, windowMs: 1000 } }
    const never = new AbortController().signal
    const granted: number[] = []
    let n = 0
    for (const at of [0, 999, 999, 1000, 1000, 1000]) {
      clock.now = at
      if ((await store.acquire([check], { id: `l${++n}`, ttlMs: 1000 }, never)).granted) granted.push(at)
    }
    // Three in the window that starts at 0, three in the one that starts at 1000 ...
    expect(granted).toEqual([0, 999, 999, 1000, 1000, 1000])
    // ... so the 1000 ms from 999 to 1999 hold five.
    expect(granted.filter((at) => at >= 999 && at < 1999)).toHaveLength(5)
  })
})

describe('registerCapsule checks a restriction\'s quotas as a manifest\'s', () => {
  test.each<[string, unknown, string]>([
    ['a window without windowMs', { requests: { limit: 1 } }, 'registerCapsule: quotas.requests.windowMs: Invalid input: expected number, received undefined'],
    ['no limit at all', {}, 'registerCapsule: quotas: a quota needs at least one of requests, concurrent, responseBytes'],
  ])('%s is a TypeError', (_name, quotas, message) => {
    const { fetch } = quotaFetch([])
    expect(() => fetch.registerCapsule('v', { http: ['api.test'], quotas: quotas as never })).toThrow(new TypeError(message))
  })
})
