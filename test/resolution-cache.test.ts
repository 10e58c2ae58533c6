// The resolution cache: bounds, exact keys, clamped TTLs, no cached failures, shared lookups, and the policy checked on every use.
import { createServer, type Server } from 'node:http'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { ErrorReply, SafeFetchOptions } from '../src/index.js'
import { RESOLUTION_CACHE_DEFAULTS, createCachingResolver, resolutionCacheProblem, safeFetchResolver, type ResolutionCacheSetup } from '../src/net/resolution-cache.js'
import { resolveAddresses, systemResolver, type Resolver, type ResolverAnswer } from '../src/net/resolve.js'
import { normaliseUrl } from '../src/url/normalise.js'
import { closeAllFetches, ctx, errorOf, ok, testFetch } from './helpers/fetch.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'

afterAll(async () => {
  await closeAllFetches()
  await closeAllServers()
})

/** A settable monotonic clock for the cache. */
function fakeClock(start = 1_000) {
  const clock = { ms: start, now: () => clock.ms }
  return clock
}

type Answer = ResolverAnswer | Error | (() => ResolverAnswer | Error)

/** An underlying lookup from a table (a value, an Error to throw, or a function of the call), recording every name asked. */
function fakeLookup(table: Record<string, Answer>) {
  const asked: string[] = []
  const lookup: Resolver = async (hostname) => {
    asked.push(hostname)
    const entry = Object.hasOwn(table, hostname) ? table[hostname] : new Error(`ENOTFOUND ${hostname}`)
    const answer = typeof entry === 'function' ? entry() : entry
    if (answer instanceof Error) throw answer
    return answer!
  }
  return { lookup, asked }
}

interface HeldCall {
  resolve(answer: ResolverAnswer): void
  reject(error: Error): void
}

/** A lookup that answers only when the test says so: `call(i)` waits for the i-th call and gives its controls. */
function heldLookup() {
  const asked: string[] = []
  const calls: Array<{ promise: Promise<HeldCall>; made: (call: HeldCall) => void }> = []
  const slot = (i: number) => {
    if (!calls[i]) {
      let made!: (call: HeldCall) => void
      calls[i] = { promise: new Promise<HeldCall>((resolve) => (made = resolve)), made }
    }
    return calls[i]!
  }
  const lookup: Resolver = (hostname) => {
    asked.push(hostname)
    const i = asked.length - 1
    return new Promise((resolve, reject) => slot(i).made({ resolve, reject }))
  }
  return {
    lookup,
    asked,
    call: (i: number) => slot(i).promise,
    answer: async (i: number, answer: ResolverAnswer) => (await slot(i).promise).resolve(answer),
    fail: async (i: number, error: Error) => (await slot(i).promise).reject(error),
  }
}

const resolveName = (resolver: Resolver, name: string, timeoutMs = 30_000, signal?: AbortSignal) =>
  resolveAddresses(normaliseUrl(`http://${name}/`), resolver, timeoutMs, signal)

/** The error code a promise rejects with, or 'none'. */
const rejection = (promise: Promise<unknown>) =>
  promise.then(
    () => 'none',
    (error: { code?: string }) => error.code ?? 'no code',
  )

describe('options', () => {
  test.each<[string, unknown, string | undefined]>([
    ['false (no cache)', false, undefined],
    ['an empty object (the defaults)', {}, undefined],
    ['every field', { maxEntries: 1, minTtlMs: 0, maxTtlMs: 0, defaultTtlMs: 0 }, undefined],
    ['floor equal to the ceiling', { minTtlMs: 5000, maxTtlMs: 5000 }, undefined],
    ['true', true, 'dnsCache must be false or an object such as { maxEntries: 1000, maxTtlMs: 60000 }, not a boolean'],
    ['an array', [], 'dnsCache must be false or an object such as { maxEntries: 1000, maxTtlMs: 60000 }, not an array'],
    ['maxEntries 0', { maxEntries: 0 }, 'dnsCache.maxEntries must be a whole number >= 1, not 0'],
    ['maxEntries 1.5', { maxEntries: 1.5 }, 'dnsCache.maxEntries must be a whole number >= 1, not 1.5'],
    ['a negative floor', { minTtlMs: -1 }, 'dnsCache.minTtlMs must be a whole number of milliseconds >= 0, not -1'],
    ['an infinite ceiling', { maxTtlMs: Infinity }, 'dnsCache.maxTtlMs must be a whole number of milliseconds >= 0, not Infinity'],
    ['a string default', { defaultTtlMs: '10' }, 'dnsCache.defaultTtlMs must be a whole number of milliseconds >= 0, not a string'],
    ['a misspelt field', { maxEntrys: 5 }, 'unknown option "dnsCache.maxEntrys"; did you mean "dnsCache.maxEntries"?'],
    ['the floor above the ceiling', { minTtlMs: 2, maxTtlMs: 1 }, 'dnsCache.minTtlMs (2) must not be more than dnsCache.maxTtlMs (1)'],
    ['the floor above the default ceiling', { minTtlMs: 300_001 }, 'dnsCache.minTtlMs (300001) must not be more than dnsCache.maxTtlMs (300000)'],
  ])('dnsCache %s', (_name, value, problem) => {
    expect(resolutionCacheProblem(value)).toBe(problem)
  })

  test.each<[string, unknown, string]>([
    ['a bad bound', { maxEntries: 0 }, 'createCachingResolver: maxEntries must be a whole number >= 1, not 0'],
    ['a clock that is not a function', { now: 5 }, 'createCachingResolver: now must be a function, not a number'],
    ['the floor above the ceiling', { minTtlMs: 10, maxTtlMs: 1 }, 'createCachingResolver: minTtlMs (10) must not be more than maxTtlMs (1)'],
  ])('createCachingResolver with %s is a TypeError', (_name, setup, message) => {
    expect(() => createCachingResolver(fakeLookup({}).lookup, setup as ResolutionCacheSetup)).toThrow(new TypeError(message))
  })

  test('the documented defaults', () => {
    expect(RESOLUTION_CACHE_DEFAULTS).toEqual({ maxEntries: 1000, minTtlMs: 1000, maxTtlMs: 300_000, defaultTtlMs: 10_000, joinWindowMs: 10_000 })
  })
})

describe('bounds', () => {
  // Every name answers 127.0.0.1; the rows say which names the underlying lookup was asked for.
  test.each<[string, number, string[], string[]]>([
    ['a repeat within the bound is served from the cache', 2, ['a.test', 'b.test', 'a.test', 'b.test'], ['a.test', 'b.test']],
    ['one name past the bound evicts the oldest', 2, ['a.test', 'b.test', 'c.test', 'a.test'], ['a.test', 'b.test', 'c.test', 'a.test']],
    ['the least recently used goes, not the first stored', 2, ['a.test', 'b.test', 'a.test', 'c.test', 'a.test', 'b.test'], ['a.test', 'b.test', 'c.test', 'b.test']],
    ['a bound of one keeps only the last name', 1, ['a.test', 'b.test', 'b.test', 'a.test'], ['a.test', 'b.test', 'a.test']],
  ])('%s (maxEntries %i)', async (_name, maxEntries, names, asked) => {
    const underlying = fakeLookup(Object.fromEntries(['a.test', 'b.test', 'c.test'].map((n) => [n, ['127.0.0.1']])))
    const resolver = createCachingResolver(underlying.lookup, { maxEntries, now: fakeClock().now })
    for (const name of names) expect((await resolveName(resolver, name)).map((a) => a.address)).toEqual(['127.0.0.1'])
    expect(underlying.asked).toEqual(asked)
  })

  test('2,000 distinct names through a bound of 1,000: the first 1,000 are all gone, the last 1,000 all kept', async () => {
    const underlying = fakeLookup({})
    const lookup: Resolver = async (name) => (underlying.asked.push(name), ['127.0.0.1'])
    const resolver = createCachingResolver(lookup, { now: fakeClock().now })
    const names = Array.from({ length: 2000 }, (_, i) => `n${i}.test`)
    for (const name of names) await resolver(name)
    underlying.asked.length = 0
    for (const name of names.slice(1000)) await resolver(name)
    expect(underlying.asked).toEqual([])
    for (const name of names.slice(0, 1000)) await resolver(name)
    expect(underlying.asked).toHaveLength(1000)
  })
})

describe('keys', () => {
  test('the cache keys by the exact string: names differing in case, a trailing dot or a label never share', async () => {
    const table = { 'api.test': ['127.0.0.1'], 'API.test': ['127.0.0.2'], 'api.test.': ['127.0.0.3'], 'api.tes': ['127.0.0.4'], __proto__: ['127.0.0.5'] }
    const underlying = fakeLookup(table)
    const resolver = createCachingResolver(underlying.lookup, { now: fakeClock().now })
    for (let round = 0; round < 2; round++) {
      for (const [name, answer] of Object.entries(table)) expect(await resolver(name)).toEqual(answer)
    }
    expect(underlying.asked).toEqual(Object.keys(table))
  })

  test('the safe fetch resolves the normalised name, so API.test, api.test. and api.test are one entry', async () => {
    const underlying = fakeLookup({ 'api.test': ['127.0.0.1'] })
    const fetch = testFetch({ resolver: createCachingResolver(underlying.lookup, { now: fakeClock().now }), rules: { host: 'api.test', httpsOnly: false, port: 9 } })
    for (const host of ['API.test', 'api.test.', 'api.test', 'Api.Test.']) {
      expect(await fetch.explain({ url: `http://${host}:9/` }, ctx())).toMatchObject({ allowed: true, addresses: [{ address: '127.0.0.1', class: 'loopback' }] })
    }
    expect(underlying.asked).toEqual(['api.test'])
  })
})

describe('TTL', () => {
  // [row, answer's ttlMs, setup, the time the answer is kept]
  test.each<[string, number | undefined, ResolutionCacheSetup, number]>([
    ['no TTL: the default', undefined, {}, 10_000],
    ['TTL 0: the floor', 0, {}, 1_000],
    ['TTL below the floor: the floor', 999, {}, 1_000],
    ['TTL at the floor', 1_000, {}, 1_000],
    ['TTL between floor and ceiling: as given', 42_000, {}, 42_000],
    ['TTL at the ceiling', 300_000, {}, 300_000],
    ['TTL above the ceiling: the ceiling', 300_001, {}, 300_000],
    ['an infinite TTL: the ceiling', Infinity, {}, 300_000],
    ['a NaN TTL: the default', NaN, {}, 10_000],
    ['a negative TTL: the default', -5, {}, 10_000],
    ['a default below the floor is raised to it', undefined, { minTtlMs: 2_000, defaultTtlMs: 500 }, 2_000],
    ['a default above the ceiling is lowered to it', undefined, { maxTtlMs: 3_000, defaultTtlMs: 9_000 }, 3_000],
    ['a custom floor and ceiling', 1, { minTtlMs: 5, maxTtlMs: 7 }, 5],
  ])('%s', async (_name, ttlMs, setup, keptMs) => {
    const clock = fakeClock()
    const answer = ttlMs === undefined ? ['127.0.0.1'] : { addresses: ['127.0.0.1'], ttlMs }
    const underlying = fakeLookup({ 'api.test': answer })
    const resolver = createCachingResolver(underlying.lookup, { ...setup, now: clock.now })
    await resolveName(resolver, 'api.test')
    clock.ms += keptMs - 1
    await resolveName(resolver, 'api.test')
    expect(underlying.asked).toHaveLength(1)
    // Expired at exactly stored + TTL: that use asks again.
    clock.ms += 1
    await resolveName(resolver, 'api.test')
    expect(underlying.asked).toHaveLength(2)
  })

  test('a floor and ceiling of 0 keep nothing: every use asks', async () => {
    const underlying = fakeLookup({ 'api.test': { addresses: ['127.0.0.1'], ttlMs: 60_000 } })
    const resolver = createCachingResolver(underlying.lookup, { minTtlMs: 0, maxTtlMs: 0, now: fakeClock().now })
    for (let i = 0; i < 3; i++) await resolveName(resolver, 'api.test')
    expect(underlying.asked).toHaveLength(3)
  })

  test('the clock runs from when the answer arrived, not from when it was asked', async () => {
    const clock = fakeClock()
    const underlying = heldLookup()
    const resolver = createCachingResolver(underlying.lookup, { now: clock.now })
    const first = resolveName(resolver, 'api.test')
    clock.ms += 5_000
    await underlying.answer(0, ['127.0.0.1'])
    await first
    clock.ms += 9_999
    await resolveName(resolver, 'api.test')
    expect(underlying.asked).toHaveLength(1)
  })
})

describe('failures are not kept', () => {
  test.each<[string, Answer, string]>([
    ['a lookup that throws', new Error('ENOTFOUND api.test'), 'dns_failed'],
    ['an empty answer', [], 'dns_failed'],
    ['an empty answer with a TTL', { addresses: [], ttlMs: 60_000 }, 'dns_failed'],
    ['an answer with an invalid address', ['127.0.0.1', 'not-an-ip'], 'dns_failed'],
    ['an answer with a zone', { addresses: ['fe80::1%lo'], ttlMs: 60_000 }, 'dns_failed'],
    ['an answer that is not a list', { ttlMs: 60_000 } as unknown as ResolverAnswer, 'dns_failed'],
  ])('%s is %s on every use, and each use asks again', async (_name, failure, code) => {
    let calls = 0
    const underlying = fakeLookup({ 'api.test': () => (calls++ < 2 ? (failure as ResolverAnswer | Error) : ['127.0.0.1']) })
    const resolver = createCachingResolver(underlying.lookup, { now: fakeClock().now })
    expect(await rejection(resolveName(resolver, 'api.test'))).toBe(code)
    expect(await rejection(resolveName(resolver, 'api.test'))).toBe(code)
    expect(await rejection(resolveName(resolver, 'api.test'))).toBe('none')
    expect(await rejection(resolveName(resolver, 'api.test'))).toBe('none')
    expect(underlying.asked).toHaveLength(3)
  })
})

describe('one lookup in flight per name', () => {
  test('concurrent uses share one lookup; each gets the answer', async () => {
    const underlying = heldLookup()
    const resolver = createCachingResolver(underlying.lookup, { now: fakeClock().now })
    const uses = [resolveName(resolver, 'api.test'), resolveName(resolver, 'api.test'), resolveName(resolver, 'api.test')]
    await underlying.answer(0, ['127.0.0.1'])
    for (const use of uses) expect((await use).map((a) => a.address)).toEqual(['127.0.0.1'])
    expect(underlying.asked).toEqual(['api.test'])
  })

  test("the first caller's abort is cancelled for it alone; the others get the answer", async () => {
    const underlying = heldLookup()
    const resolver = createCachingResolver(underlying.lookup, { now: fakeClock().now })
    const controller = new AbortController()
    const first = rejection(resolveName(resolver, 'api.test', 30_000, controller.signal))
    const second = resolveName(resolver, 'api.test')
    controller.abort()
    expect(await first).toBe('cancelled')
    await underlying.answer(0, ['127.0.0.1'])
    expect((await second).map((a) => a.address)).toEqual(['127.0.0.1'])
    expect(underlying.asked).toEqual(['api.test'])
  })

  test("a caller's own time limit is timeout for it alone; a caller with more time gets the answer", async () => {
    const underlying = heldLookup()
    const resolver = createCachingResolver(underlying.lookup, { now: fakeClock().now })
    const second = resolveName(resolver, 'api.test', 30_000)
    // The short limit is a real timer: this waits on its firing, and the lookup is held meanwhile.
    expect(await rejection(resolveName(resolver, 'api.test', 1))).toBe('timeout')
    await underlying.answer(0, ['127.0.0.1'])
    expect((await second).map((a) => a.address)).toEqual(['127.0.0.1'])
    expect(underlying.asked).toEqual(['api.test'])
  })

  test('an already aborted caller is cancelled even when the answer is cached', async () => {
    const underlying = fakeLookup({ 'api.test': ['127.0.0.1'] })
    const resolver = createCachingResolver(underlying.lookup, { now: fakeClock().now })
    await resolveName(resolver, 'api.test')
    expect(await rejection(resolveName(resolver, 'api.test', 30_000, AbortSignal.abort()))).toBe('cancelled')
  })

  test('a shared lookup that fails fails every caller, and the next use asks again', async () => {
    const underlying = heldLookup()
    const resolver = createCachingResolver(underlying.lookup, { now: fakeClock().now })
    const uses = [rejection(resolveName(resolver, 'api.test')), rejection(resolveName(resolver, 'api.test'))]
    await underlying.fail(0, new Error('SERVFAIL'))
    expect(await Promise.all(uses)).toEqual(['dns_failed', 'dns_failed'])
    const next = resolveName(resolver, 'api.test')
    await underlying.answer(1, ['127.0.0.1'])
    expect((await next).map((a) => a.address)).toEqual(['127.0.0.1'])
    expect(underlying.asked).toEqual(['api.test', 'api.test'])
  })

  test('a lookup unanswered for the join window is not joined, and its late answer never replaces the newer one', async () => {
    const clock = fakeClock()
    const underlying = heldLookup()
    const resolver = createCachingResolver(underlying.lookup, { now: clock.now, joinWindowMs: 100 })
    // The resolver itself (not resolveAddresses) decides at the call, so the clock is read there.
    const hung = resolver('api.test')
    const first = await underlying.call(0)
    clock.ms += 99
    const joined = resolver('api.test')
    clock.ms += 1
    const fresh = resolver('api.test')
    const second = await underlying.call(1)
    expect(underlying.asked).toHaveLength(2)
    second.resolve(['127.0.0.2'])
    expect(await fresh).toEqual(['127.0.0.2'])
    first.resolve(['127.0.0.1'])
    expect(await hung).toEqual(['127.0.0.1'])
    expect(await joined).toEqual(['127.0.0.1'])
    expect(await resolver('api.test')).toEqual(['127.0.0.2'])
    expect(underlying.asked).toHaveLength(2)
  })
})

describe('which resolver a safe fetch caches', () => {
  test.each<[string, { resolver?: 'host'; dnsCache?: false | object }, boolean]>([
    ["a host's resolver, no dnsCache: not cached", { resolver: 'host' }, false],
    ["a host's resolver, dnsCache false: not cached", { resolver: 'host', dnsCache: false }, false],
    ["a host's resolver, dnsCache {}: cached", { resolver: 'host', dnsCache: {} }, true],
  ])('%s', async (_name, given, cached) => {
    const underlying = fakeLookup({ 'api.test': ['127.0.0.1'] })
    const resolver = safeFetchResolver({ ...given, resolver: underlying.lookup } as Parameters<typeof safeFetchResolver>[0])
    await resolveName(resolver, 'api.test')
    await resolveName(resolver, 'api.test')
    expect(underlying.asked).toHaveLength(cached ? 1 : 2)
  })

  test.each<[string, SafeFetchOptions['dnsCache'], number]>([
    ["a host's resolver given to createSafeFetch without dnsCache: asked on every use", undefined, 3],
    ["a host's resolver with dnsCache false: asked on every use", false, 3],
    ["a host's resolver with dnsCache {}: asked once", {}, 1],
    ["a host's resolver with dnsCache and a TTL floor and ceiling of 0: asked on every use", { minTtlMs: 0, maxTtlMs: 0 }, 3],
  ])('%s', async (_name, dnsCache, asks) => {
    const underlying = fakeLookup({ 'api.test': ['127.0.0.1'] })
    const fetch = testFetch({ resolver: underlying.lookup, rules: { host: 'api.test', httpsOnly: false, port: 9 }, ...(dnsCache === undefined ? {} : { dnsCache }) })
    for (let use = 0; use < 3; use++) expect(await fetch.explain({ url: 'http://api.test:9/' }, ctx())).toMatchObject({ allowed: true })
    expect(underlying.asked).toHaveLength(asks)
  })

  test('createSafeFetch refuses a bad dnsCache with a TypeError naming it', () => {
    expect(() => testFetch({ dnsCache: { maxEntries: 0 } })).toThrow(new TypeError('createSafeFetch: dnsCache.maxEntries must be a whole number >= 1, not 0'))
  })

  test('the system resolver: cached by default, one cache per call (so per safe fetch), and not with dnsCache false', async () => {
    expect(safeFetchResolver({ dnsCache: false })).toBe(systemResolver)
    // localhost is in /etc/hosts: getaddrinfo answers it from the file, with no DNS packet.
    const one = safeFetchResolver({})
    const first = await one('localhost')
    expect(await one('localhost')).toBe(first)
    expect(Object.isFrozen(first)).toBe(true)
    const other = safeFetchResolver({})
    expect(await other('localhost')).not.toBe(first)
  })
})

describe('the address policy on every use', () => {
  let server: TestServer
  let second: Server
  beforeAll(async () => {
    server = await startServer((req, res) => res.end(`served by ${req.socket.localAddress}`))
    second = createServer((req, res) => res.end(`served by ${req.socket.localAddress}`))
    await new Promise<void>((resolve) => second.listen(server.port, '127.0.0.2', resolve))
  })
  afterAll(() => new Promise<void>((resolve) => second.close(() => resolve())))

  const url = (host = 'api.test', path = '/') => `http://${host}:${server.port}${path}`
  const rules = () => [{ host: 'api.test', httpsOnly: false, port: server.port }, { host: 'other.test', httpsOnly: false, port: server.port }]
  function cachedFetch(table: Record<string, Answer>, options: SafeFetchOptions = {}, clock = fakeClock()) {
    const underlying = fakeLookup(table)
    const resolver = createCachingResolver(underlying.lookup, { now: clock.now })
    return { underlying, clock, fetch: testFetch({ rules: rules(), resolver, ...options }) }
  }

  test.each<[string, string[]]>([
    ['one blocked address among allowed ones', ['127.0.0.1', '10.0.0.1']],
    ['a blocked address first', ['10.0.0.1', '127.0.0.1']],
    ['loopback outside the allowed /32', ['127.0.0.2']],
    ['IPv4-mapped loopback', ['::ffff:127.0.0.1']],
    ['the metadata address', ['169.254.169.254']],
  ])('a cached answer with %s is blocked_address on every use, and no connection is made', async (_name, answer) => {
    const { fetch, underlying } = cachedFetch({ 'api.test': { addresses: answer, ttlMs: 60_000 } })
    const before = server.connections
    for (let use = 0; use < 3; use++) {
      expect(await fetch.explain({ url: url() }, ctx())).toMatchObject({ allowed: false, code: 'blocked_address', decidedBy: 'address-policy' })
      expect(errorOf(await fetch.request({ url: url() }, ctx()))?.code).toBe('blocked_address')
    }
    expect(underlying.asked).toEqual(['api.test'])
    expect(server.connections).toBe(before)
  })

  test('two safe fetches sharing nothing: each cache serves the same answer, each policy judges it', async () => {
    const table = { 'api.test': { addresses: ['127.0.0.2'], ttlMs: 60_000 } }
    const open = cachedFetch(table, { addressPolicy: { unsafeAllow: ['127.0.0.2/32'] } })
    const strict = cachedFetch(table)
    for (let use = 0; use < 2; use++) {
      expect(ok(await open.fetch.request({ url: url() }, ctx())).body).toBe('served by 127.0.0.2')
      expect(errorOf(await strict.fetch.request({ url: url() }, ctx()))?.code).toBe('blocked_address')
    }
    expect(open.underlying.asked).toEqual(['api.test'])
    expect(strict.underlying.asked).toEqual(['api.test'])
  })

  test('one cached resolver given to two safe fetches: one lookup, and each policy still judges every use', async () => {
    const underlying = fakeLookup({ 'api.test': ['127.0.0.2'] })
    const resolver = createCachingResolver(underlying.lookup, { now: fakeClock().now })
    const open = testFetch({ rules: rules(), resolver, addressPolicy: { unsafeAllow: ['127.0.0.2/32'] } })
    const strict = testFetch({ rules: rules(), resolver })
    for (let use = 0; use < 2; use++) {
      expect(errorOf(await strict.request({ url: url() }, ctx()))?.code).toBe('blocked_address')
      expect(ok(await open.request({ url: url() }, ctx())).body).toBe('served by 127.0.0.2')
    }
    expect(underlying.asked).toEqual(['api.test'])
  })

  test('rebinding: within the TTL the checked answer is kept; after expiry a blocked answer is blocked_address', async () => {
    let calls = 0
    const { fetch, underlying, clock } = cachedFetch({ 'api.test': () => ({ addresses: [calls++ === 0 ? '127.0.0.1' : '10.0.0.1'], ttlMs: 5_000 }) })
    expect(ok(await fetch.request({ url: url() }, ctx())).body).toBe('served by 127.0.0.1')
    clock.ms += 4_999
    expect(ok(await fetch.request({ url: url() }, ctx())).body).toBe('served by 127.0.0.1')
    clock.ms += 1
    const before = server.connections
    const refused = await fetch.request({ url: url() }, ctx())
    expect(errorOf(refused)?.code).toBe('blocked_address')
    expect((refused as ErrorReply).error.message).not.toContain('10.0.0.1')
    expect(await fetch.explain({ url: url() }, ctx())).toMatchObject({ allowed: false, code: 'blocked_address', addresses: [{ address: '10.0.0.1', class: 'private' }] })
    expect(server.connections).toBe(before)
    expect(underlying.asked).toEqual(['api.test', 'api.test'])
  })

  test('each request dials the address of the answer in force: a changed answer is dialled only after expiry', async () => {
    let calls = 0
    const { fetch, clock } = cachedFetch(
      { 'api.test': () => ({ addresses: [calls++ === 0 ? '127.0.0.1' : '127.0.0.2'], ttlMs: 2_000 }) },
      { addressPolicy: { unsafeAllow: ['127.0.0.1/32', '127.0.0.2/32'] } },
    )
    const bodies: string[] = []
    for (const step of [0, 1_999, 1, 0]) {
      clock.ms += step
      bodies.push(ok(await fetch.request({ url: url() }, ctx())).body as string)
    }
    expect(bodies).toEqual(['served by 127.0.0.1', 'served by 127.0.0.1', 'served by 127.0.0.2', 'served by 127.0.0.2'])
  })

  test('a redirect hop resolves through the same cache and its cached blocked answer is blocked_address', async () => {
    const redirecting = await startServer((req, res) => {
      res.statusCode = 302
      res.setHeader('location', `http://other.test:${server.port}/`)
      res.end()
    })
    const underlying = fakeLookup({ 'api.test': ['127.0.0.1'], 'other.test': { addresses: ['10.0.0.7'], ttlMs: 60_000 } })
    const resolver = createCachingResolver(underlying.lookup, { now: fakeClock().now })
    const fetch = testFetch({ rules: [...rules(), { host: 'api.test', httpsOnly: false, port: redirecting.port }], resolver, maxRedirects: 2 })
    for (let use = 0; use < 2; use++) {
      const reply = await fetch.request({ url: `http://api.test:${redirecting.port}/`, options: { redirect: 'follow' } }, ctx())
      expect(errorOf(reply)?.code).toBe('blocked_address')
    }
    expect(underlying.asked).toEqual(['api.test', 'other.test'])
  })
})
