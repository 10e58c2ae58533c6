// Quotas in one process: the memory store's table of windows and leases, the options' errors, and rate_limited through a real safe fetch and a real capsule.
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest'
import { createRuntime, memoryQuotaStore, type QuotaAnswer, type QuotaCheck, type QuotaRule, type QuotaStore, type SafeFetchOptions } from '../src/index.js'
import { CONCURRENT_RETRY_MS, MAX_LEASE_MS, UNAVAILABLE_RETRY_MS } from '../src/quota/types.js'
import { LEASE_GRACE_MS, QuotaGuard } from '../src/quota/guard.js'
import { compileQuotas, quotaRequest } from '../src/quota/quotas.js'
import { RequestTrace } from '../src/fetch/trace.js'
import { normaliseUrl } from '../src/url/normalise.js'
import { capsulePath } from './helpers/capsules.js'
import { closeAllFetches, ctx, errorOf, ok, testFetch } from './helpers/fetch.js'
import { quotaFetchOn } from './helpers/quota.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'

/** A memory store on a clock the test moves. */
function clockedStore() {
  const clock = { now: 0 }
  return { clock, store: memoryQuotaStore({ now: () => clock.now }) }
}

const signal = new AbortController().signal
let leases = 0
const lease = (ttlMs = 60_000) => ({ id: `lease-${++leases}`, ttlMs })

/** One step of a store table: at time `at`, acquire (and keep the lease) or release bytes. */
type Step =
  | { at: number; acquire: true; expect: QuotaAnswer }
  | { at: number; release: number; bytes?: number }

async function runSteps(checks: QuotaCheck[], steps: Step[]) {
  const { clock, store } = clockedStore()
  const held: string[] = []
  for (const [i, step] of steps.entries()) {
    clock.now = step.at
    if ('acquire' in step) {
      const l = lease()
      const answer = await store.acquire(checks, l, signal)
      expect(answer, `step ${i} at ${step.at}`).toEqual(step.expect)
      if (answer.granted) held.push(l.id)
    } else {
      await store.release(checks, held[step.release]!, step.bytes ?? 0)
    }
  }
}

const GRANTED = { granted: true } as const
const refused = (kind: 'requests' | 'concurrent' | 'responseBytes', retryAfterMs: number, index = 0) => ({ granted: false, index, kind, retryAfterMs })

describe('memoryQuotaStore: windows and leases', () => {
  const requests3: QuotaCheck = { key: 'k', requests: { limit: 3, windowMs: 1000 } }
  test.each<[string, QuotaCheck[], Step[]]>([
    ['requests: limit - 1, limit, limit + 1 in one window', [requests3], [
      { at: 0, acquire: true, expect: GRANTED },
      { at: 10, acquire: true, expect: GRANTED },
      { at: 20, acquire: true, expect: GRANTED },
      { at: 20, acquire: true, expect: refused('requests', 980) },
    ]],
    ['requests: 1 ms before the window ends it is still full (retry after 1 ms); at its end a new one starts', [requests3], [
      { at: 0, acquire: true, expect: GRANTED }, { at: 0, acquire: true, expect: GRANTED }, { at: 0, acquire: true, expect: GRANTED },
      { at: 999, acquire: true, expect: refused('requests', 1) },
      { at: 1000, acquire: true, expect: GRANTED },
      { at: 1000, acquire: true, expect: GRANTED }, { at: 1000, acquire: true, expect: GRANTED },
      { at: 1999, acquire: true, expect: refused('requests', 1) },
    ]],
    ['requests: the window starts at the first request counted, not at time 0', [requests3], [
      { at: 500, acquire: true, expect: GRANTED }, { at: 500, acquire: true, expect: GRANTED }, { at: 500, acquire: true, expect: GRANTED },
      { at: 1200, acquire: true, expect: refused('requests', 300) },
      { at: 1500, acquire: true, expect: GRANTED },
    ]],
    ['concurrent: limit 2; a release frees a slot', [{ key: 'k', concurrent: 2 }], [
      { at: 0, acquire: true, expect: GRANTED }, { at: 0, acquire: true, expect: GRANTED },
      { at: 0, acquire: true, expect: refused('concurrent', CONCURRENT_RETRY_MS) },
      { at: 1, release: 0 },
      { at: 1, acquire: true, expect: GRANTED },
      { at: 1, acquire: true, expect: refused('concurrent', CONCURRENT_RETRY_MS) },
    ]],
    ['concurrent: a lease never released expires after its ttl', [{ key: 'k', concurrent: 1 }], [
      { at: 0, acquire: true, expect: GRANTED },
      { at: 59_999, acquire: true, expect: refused('concurrent', CONCURRENT_RETRY_MS) },
      { at: 60_000, acquire: true, expect: GRANTED },
    ]],
    ['responseBytes: 99 of 100 used lets one more in; 100 refuses until the window ends', [{ key: 'k', responseBytes: { limit: 100, windowMs: 1000 } }], [
      { at: 0, acquire: true, expect: GRANTED }, { at: 5, release: 0, bytes: 99 },
      { at: 10, acquire: true, expect: GRANTED }, { at: 10, release: 1, bytes: 1 },
      { at: 10, acquire: true, expect: refused('responseBytes', 995) },
      { at: 1005, acquire: true, expect: GRANTED },
    ]],
    ['all or nothing: a refusal by the second check takes nothing from the first', [requests3, { key: 'other', concurrent: 1 }], [
      { at: 0, acquire: true, expect: GRANTED },
      { at: 0, acquire: true, expect: refused('concurrent', CONCURRENT_RETRY_MS, 1) },
      { at: 0, acquire: true, expect: refused('concurrent', CONCURRENT_RETRY_MS, 1) },
      { at: 0, release: 0 },
      { at: 0, acquire: true, expect: GRANTED },
      { at: 0, acquire: true, expect: refused('concurrent', CONCURRENT_RETRY_MS, 1) },
    ]],
    ['checks on other keys keep their own counters', [requests3, { key: 'z', requests: { limit: 1, windowMs: 1000 } }], [
      { at: 0, acquire: true, expect: GRANTED },
      { at: 0, acquire: true, expect: refused('requests', 1000, 1) },
    ]],
  ])('%s', async (_name, checks, steps) => {
    await runSteps(checks, steps)
  })

  test('renew: a held lease lives ttl from the renewal; a released or expired one stays gone', async () => {
    const { clock, store } = clockedStore()
    const checks = [{ key: 'k', concurrent: 1 }]
    const l = lease(1000)
    expect(await store.acquire(checks, l, signal)).toEqual(GRANTED)
    clock.now = 900
    await store.renew!(checks, l.id, 1000)
    clock.now = 1899
    expect(await store.acquire(checks, lease(), signal)).toEqual(refused('concurrent', CONCURRENT_RETRY_MS))
    clock.now = 1900
    await store.renew!(checks, l.id, 1000)
    const next = lease(1000)
    expect(await store.acquire(checks, next, signal)).toEqual(GRANTED)
    await store.release(checks, next.id, 0)
    await store.renew!(checks, next.id, 1000)
    expect(await store.acquire(checks, lease(), signal)).toEqual(GRANTED)
  })

  test('a released unknown lease and a second release change nothing', async () => {
    const { store } = clockedStore()
    const checks = [{ key: 'k', concurrent: 1 }]
    await store.release(checks, 'never-taken', 0)
    const l = lease()
    expect(await store.acquire(checks, l, signal)).toEqual(GRANTED)
    await store.release(checks, l.id, 0)
    await store.release(checks, l.id, 0)
    expect(await store.acquire(checks, lease(), signal)).toEqual(GRANTED)
    expect(await store.acquire(checks, lease(), signal)).toEqual(refused('concurrent', CONCURRENT_RETRY_MS))
  })

  test('a closed store answers unavailable', async () => {
    const { store } = clockedStore()
    await store.close()
    expect(await store.acquire([{ key: 'k', concurrent: 1 }], lease(), signal)).toEqual({ granted: false, index: -1, kind: 'unavailable', retryAfterMs: UNAVAILABLE_RETRY_MS })
  })

  test('20,000 keys whose windows ended are swept: the next window of each starts fresh', async () => {
    const { clock, store } = clockedStore()
    for (let i = 0; i < 20_000; i++) await store.acquire([{ key: `k${i}`, requests: { limit: 1, windowMs: 10 } }], lease(), signal)
    clock.now = 10
    for (let i = 0; i < 20_000; i += 997) expect(await store.acquire([{ key: `k${i}`, requests: { limit: 1, windowMs: 10 } }], lease(), signal)).toEqual(GRANTED)
  })

  test('the clock option must be a function', () => {
    expect(() => memoryQuotaStore({ now: 5 as unknown as () => number })).toThrow(new TypeError('memoryQuotaStore: now must be a function returning ms'))
  })
})

describe('QuotaGuard: lease ttl and renewal', () => {
  /** A store that grants everything and records what it is asked. */
  function recordingStore() {
    const calls: string[] = []
    const store: QuotaStore = {
      acquire: async (_checks, l) => (calls.push(`acquire ttl ${l.ttlMs}`), { granted: true }),
      release: async () => void calls.push('release'),
      renew: async (_checks, _id, ttlMs) => void calls.push(`renew ${ttlMs}`),
      close: async () => {},
    }
    return { calls, store }
  }
  const url = normaliseUrl('https://api.test/x')
  const take = (guard: QuotaGuard, totalTimeoutMs: number, concurrent: number | undefined) =>
    guard.take(compileQuotas([{ key: 'capsule', requests: { limit: 9, windowMs: 1000 }, ...(concurrent ? { concurrent } : {}) }]), quotaRequest('c', undefined, 'stream', 'GET', url), totalTimeoutMs, signal, new RequestTrace('c', 'c#1', 'stream'))

  test.each<[string, number, number]>([
    ['a 30 s request: its timeout plus the grace', 30_000, 30_000 + LEASE_GRACE_MS],
    ['exactly at the cap', MAX_LEASE_MS - LEASE_GRACE_MS, MAX_LEASE_MS],
    ['1 ms past the cap', MAX_LEASE_MS - LEASE_GRACE_MS + 1, MAX_LEASE_MS],
    ['a stream without a total timeout', Infinity, MAX_LEASE_MS],
  ])('%s', async (_name, total, ttl) => {
    const { calls, store } = recordingStore()
    const hold = await take(new QuotaGuard(store), total, 1)
    hold!.release(0)
    expect(calls[0]).toBe(`acquire ttl ${ttl}`)
  })

  test('a hold longer than the cap renews every third of it until released; a shorter one never does', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    try {
      const { calls, store } = recordingStore()
      const guard = new QuotaGuard(store)
      const endless = await take(guard, Infinity, 1)
      const short = await take(guard, MAX_LEASE_MS - LEASE_GRACE_MS, 1)
      const noSlot = await take(guard, Infinity, undefined)
      vi.advanceTimersByTime(MAX_LEASE_MS / 3 - 1)
      expect(calls.filter((c) => c.startsWith('renew'))).toEqual([])
      vi.advanceTimersByTime(1)
      expect(calls.filter((c) => c.startsWith('renew'))).toEqual([`renew ${MAX_LEASE_MS}`])
      vi.advanceTimersByTime(MAX_LEASE_MS)
      expect(calls.filter((c) => c.startsWith('renew'))).toHaveLength(4)
      endless!.release(0)
      short!.release(0)
      noSlot!.release(0)
      vi.advanceTimersByTime(10 * MAX_LEASE_MS)
      expect(calls.filter((c) => c.startsWith('renew'))).toHaveLength(4)
    } finally {
      vi.useRealTimers()
    }
  })
})

describe('createSafeFetch: quota options', () => {
  const window = { limit: 1, windowMs: 1000 }
  test.each<[string, unknown, string]>([
    ['not an array', { key: 'capsule' }, 'createSafeFetch: quotas: Invalid input: expected array, received object'],
    ['no limit', [{ key: 'capsule' }], 'createSafeFetch: quotas[0]: a quota needs at least one of requests, concurrent, responseBytes'],
    ['a key that is neither', [{ key: 'tenant', requests: window }], 'createSafeFetch: quotas[0].key: key must be "capsule" or a function of the request'],
    ['limit 0', [{ key: 'capsule', requests: { limit: 0, windowMs: 1000 } }], 'createSafeFetch: quotas[0].requests.limit: Too small: expected number to be >0'],
    ['a fractional limit', [{ key: 'capsule', concurrent: 1.5 }], 'createSafeFetch: quotas[0].concurrent: Invalid input: expected int, received number'],
    ['windowMs 0', [{ key: 'capsule', responseBytes: { limit: 5, windowMs: 0 } }], 'createSafeFetch: quotas[0].responseBytes.windowMs: Too small: expected number to be >0'],
    ['a window over a year', [{ key: 'capsule', requests: { limit: 5, windowMs: 366 * 24 * 3600 * 1000 + 1 } }], 'createSafeFetch: quotas[0].requests.windowMs: Too big: expected number to be <=31622400000'],
    ['an unknown field', [{ key: 'capsule', requests: window, burst: 3 }], 'createSafeFetch: quotas[0]: Unrecognized key: "burst"'],
    ['two quotas with one id', [{ key: 'capsule', id: 'a', requests: window }, { key: 'capsule', id: 'a', concurrent: 1 }], 'createSafeFetch: quotas: two quotas have the id "a"'],
    ['an id equal to another index', [{ key: 'capsule', requests: window }, { key: 'capsule', id: '0', concurrent: 1 }], 'createSafeFetch: quotas: two quotas have the id "0"'],
    ['65 quotas', Array.from({ length: 65 }, () => ({ key: 'capsule', concurrent: 1 })), 'createSafeFetch: quotas: Too big: expected array to have <=64 items'],
  ])('%s', (_name, quotas, message) => {
    expect(() => testFetch({ quotas } as SafeFetchOptions)).toThrow(new TypeError(message))
  })

  test.each<[string, unknown]>([
    ['a store without release', { acquire() {}, close() {} }],
    ['a string', 'redis://127.0.0.1'],
  ])('quotaStore: %s', (_name, quotaStore) => {
    expect(() => testFetch({ quotaStore } as SafeFetchOptions)).toThrow(
      /^createSafeFetch: quotaStore must be a quota store \(acquire, release, close\), such as memoryQuotaStore\(\) or redisQuotaStore\(\{ url \}\), not a/,
    )
  })

  test('64 quotas are accepted', () => {
    expect(() => testFetch({ quotas: Array.from({ length: 64 }, () => ({ key: 'capsule' as const, concurrent: 1 })) })).not.toThrow()
  })
})

let server: TestServer
/** Requests the upstream is holding, answered when the test says. */
const held: Array<() => void> = []
beforeAll(async () => {
  server = await startServer((req, res) => {
    if (req.url === '/hold') held.push(() => res.end('late'))
    else if (req.url === '/reset') req.socket.destroy()
    else if (req.url === '/big') res.end('x'.repeat(1000))
    else res.end('ok')
  })
})
afterAll(async () => {
  await closeAllFetches()
  await closeAllServers()
})

/** A safe fetch on the test server with these quotas; `url()` here is a request's JSON, as a capsule sends it. */
function quotaFetch(quotas: QuotaRule[], extra: SafeFetchOptions = {}) {
  const made = quotaFetchOn(server, quotas, extra)
  return { ...made, url: (path?: string, host?: string) => JSON.stringify({ url: made.url(path, host) }) }
}

/** Waits until the upstream holds `n` requests. */
async function untilHeld(n: number) {
  while (held.length < n) await new Promise((resolve) => setImmediate(resolve))
}

describe('quotas through the safe fetch', () => {
  test('over the requests quota: rate_limited with retryAfterMs, refused before any resolution or connection, and audited', async () => {
    const { fetch, events, resolver, url } = quotaFetch([{ key: 'capsule', id: 'per-capsule', requests: { limit: 2, windowMs: 60_000 } }])
    ok(await fetch.request(url(), ctx('a')))
    ok(await fetch.request(url(), ctx('a')))
    const before = { asked: resolver.asked.length, requests: server.requests.length }
    const error = errorOf(await fetch.request(url(), ctx('a')))
    expect(error).toMatchObject({ code: 'rate_limited', message: expect.stringMatching(/^quota "per-capsule" is used up \(requests: 2 per 60000 ms\); retry after \d+ ms$/) })
    expect(error!.retryAfterMs).toBeGreaterThan(0)
    expect(error!.retryAfterMs).toBeLessThanOrEqual(60_000)
    expect({ asked: resolver.asked.length, requests: server.requests.length }).toEqual(before)
    expect(events.at(-1)).toMatchObject({ allowed: false, decidedBy: 'quota:per-capsule', reason: 'over quota', code: 'rate_limited', retryAfterMs: error!.retryAfterMs, detail: expect.stringContaining('key ["per-capsule","a"]') })
    // Another capsule has its own quota.
    ok(await fetch.request(url(), ctx('b')))
  })

  test('a stream counts as a request and holds a concurrent slot until it is closed', async () => {
    const { fetch, url } = quotaFetch([{ key: 'capsule', concurrent: 1 }])
    const stream = await fetch.stream(url('/big'), ctx('s'))
    if ('error' in stream) throw new Error(stream.error.message)
    expect(errorOf(await fetch.request(url(), ctx('s')))).toMatchObject({ code: 'rate_limited', retryAfterMs: CONCURRENT_RETRY_MS })
    expect(errorOf(await fetch.stream(url(), ctx('s')))).toMatchObject({ code: 'rate_limited' })
    stream.close()
    ok(await fetch.request(url(), ctx('s')))
  })

  test.each<[string, string, string | undefined]>([
    ['a reset connection (network)', '/reset', 'network'],
    ['a refusal by the rules (denied)', 'denied', 'denied'],
    ['a response', '/', undefined],
  ])('a concurrent slot is given back after %s', async (_name, path, code) => {
    const { fetch, url } = quotaFetch([{ key: 'capsule', concurrent: 1 }])
    const input = path === 'denied' ? JSON.stringify({ url: `http://nowhere.test:${server.port}/` }) : url(path)
    expect(errorOf(await fetch.request(input, ctx('c')))?.code).toBe(code)
    ok(await fetch.request(url(), ctx('c')))
  })

  test('requests at once: the second waits for nothing and is refused while the first is in flight', async () => {
    const { fetch, url } = quotaFetch([{ key: 'capsule', concurrent: 1 }])
    const first = fetch.request(url('/hold'), ctx('h'))
    await untilHeld(1)
    expect(errorOf(await fetch.request(url(), ctx('h')))).toMatchObject({ code: 'rate_limited', retryAfterMs: CONCURRENT_RETRY_MS })
    held.shift()!()
    expect(ok(await first).body).toBe('late')
    ok(await fetch.request(url(), ctx('h')))
  })

  test('a request queued for the capsule\'s one slot takes the concurrent quota its predecessor gives back first', async () => {
    const { fetch, url } = quotaFetch([{ key: 'capsule', concurrent: 1 }], { limits: { maxConcurrentRequests: 1 } })
    const first = fetch.request(url('/hold'), ctx('q'))
    await untilHeld(1)
    const queued = fetch.request(url(), ctx('q'))
    held.shift()!()
    expect(ok(await first).body).toBe('late')
    expect(ok(await queued).body).toBe('ok')
  })

  test('response bytes are charged with what was received', async () => {
    const { fetch, events, url } = quotaFetch([{ key: 'capsule', id: 'bytes', responseBytes: { limit: 1500, windowMs: 60_000 } }])
    ok(await fetch.request(url('/big'), ctx('r')))
    ok(await fetch.request(url('/big'), ctx('r')))
    expect(errorOf(await fetch.request(url('/'), ctx('r')))).toMatchObject({ code: 'rate_limited', message: expect.stringContaining('(response bytes: 1500 per 60000 ms)') })
    expect(events.map((e) => e.bytesIn)).toEqual([1000, 1000, 0])
  })

  test('perOrigin: one quota per origin of the key', async () => {
    const { fetch, url } = quotaFetch([{ key: 'capsule', perOrigin: true, requests: { limit: 1, windowMs: 60_000 } }])
    ok(await fetch.request(url('/', 'api.test'), ctx('o')))
    ok(await fetch.request(url('/', 'other.test'), ctx('o')))
    expect(errorOf(await fetch.request(url('/x', 'api.test'), ctx('o')))?.code).toBe('rate_limited')
  })

  test('a key function: capsules of one tenant share its quota; undefined exempts; the function sees no query', async () => {
    const seen: unknown[] = []
    const tenantOf = (id: string) => (id.startsWith('acme-') ? 'acme' : undefined)
    const { fetch, url } = quotaFetch([{ key: (req) => (seen.push(req), tenantOf(req.capsuleId)), id: 'tenant', requests: { limit: 2, windowMs: 60_000 } }])
    ok(await fetch.request(url('/a?token=s3cret'), ctx('acme-1')))
    ok(await fetch.request(url(), ctx('acme-2')))
    expect(errorOf(await fetch.request(url(), ctx('acme-3')))?.code).toBe('rate_limited')
    for (let i = 0; i < 3; i++) ok(await fetch.request(url(), ctx('solo')))
    expect(seen[0]).toEqual({ capsuleId: 'acme-1', manifestName: undefined, kind: 'request', method: 'GET', origin: `http://api.test:${server.port}`, host: 'api.test', path: '/a' })
  })

  test.each<[string, QuotaRule['key']]>([
    ['throws', () => { throw new Error('tenant table is down') }],
    ['returns a number', (() => 7) as unknown as QuotaRule['key']],
  ])('a key function that %s fails the request as internal, with the error for onError', async (_name, key) => {
    const thrown: unknown[] = []
    const { fetch, events, resolver, url } = quotaFetch([{ key, concurrent: 1 }], { onError: (error) => thrown.push(error) })
    expect(errorOf(await fetch.request(url(), ctx('k')))).toEqual({ code: 'internal', message: 'internal error while handling the request' })
    expect(resolver.asked).toEqual([])
    expect(events[0]).toMatchObject({ code: 'internal', allowed: false })
    expect(thrown).toHaveLength(1)
  })

  test('the store is asked once per request, with the signal, and a late grant after an abort is given back', async () => {
    const released: string[] = []
    let answer!: (value: QuotaAnswer) => void
    const slow: QuotaStore = {
      acquire: () => new Promise((resolve) => (answer = resolve)),
      release: async (_checks, id) => void released.push(id),
      close: async () => {},
    }
    const { fetch, events, url } = quotaFetch([{ key: 'capsule', concurrent: 1 }], { quotaStore: slow })
    const controller = new AbortController()
    const pending = fetch.request(url(), ctx('slow', controller.signal))
    while (answer === undefined) await new Promise((resolve) => setImmediate(resolve))
    controller.abort()
    expect(errorOf(await pending)?.code).toBe('cancelled')
    expect(events[0]).toMatchObject({ code: 'cancelled', decidedBy: 'pending' })
    answer({ granted: true })
    while (released.length === 0) await new Promise((resolve) => setImmediate(resolve))
    expect(released).toHaveLength(1)
  })

  test('a store that cannot answer: rate_limited decided by quota-store', async () => {
    const store = memoryQuotaStore()
    await store.close()
    const { fetch, events, url } = quotaFetch([{ key: 'capsule', concurrent: 5 }], { quotaStore: store })
    expect(errorOf(await fetch.request(url(), ctx('u')))).toEqual({ code: 'rate_limited', message: `the quota store did not answer, so the request is refused; retry after ${UNAVAILABLE_RETRY_MS} ms`, retryAfterMs: UNAVAILABLE_RETRY_MS })
    expect(events[0]).toMatchObject({ decidedBy: 'quota-store', reason: 'quota store unavailable', retryAfterMs: UNAVAILABLE_RETRY_MS })
  })

  test('without quotas the store is never asked', async () => {
    let asked = 0
    const counting: QuotaStore = { acquire: async () => (asked++, { granted: true }), release: async () => {}, close: async () => {} }
    const { fetch, url } = quotaFetch([], { quotaStore: counting })
    ok(await fetch.request(url(), ctx('n')))
    expect(asked).toBe(0)
  })
})

describe('manifest quotas', () => {
  test.each<[string, object, number]>([
    ['a lower manifest quota is the one in force', { requests: { limit: 1, windowMs: 60_000 } }, 1],
    ['a higher manifest quota does not raise the host one', { requests: { limit: 50, windowMs: 60_000 } }, 3],
  ])('%s', async (_name, quotas, allowed) => {
    const { fetch, events, url } = quotaFetch([{ key: 'capsule', id: 'host', requests: { limit: 3, windowMs: 60_000 } }])
    const session = fetch.registerCapsule('m', { http: ['api.test'], quotas, name: 'm-capsule' })
    const codes: Array<string | undefined> = []
    for (let i = 0; i < 5; i++) codes.push(errorOf(await session.request(url()))?.code)
    expect(codes).toEqual([...Array(allowed).fill(undefined), ...Array(5 - allowed).fill('rate_limited')])
    expect(events.at(-1)?.decidedBy).toBe(allowed === 1 ? 'quota:manifest' : 'quota:host')
  })

  test('key functions see the manifest name', async () => {
    const names: unknown[] = []
    const { fetch, url } = quotaFetch([{ key: (req) => (names.push(req.manifestName), req.manifestName), concurrent: 1 }])
    ok(await fetch.registerCapsule('named', { http: ['api.test'], name: 'weather' }).request(url()))
    expect(names).toEqual(['weather'])
  })
})

describe('a real capsule over its quota', () => {
  test('the SDK reads rate_limited and retryAfterMs; the runtime passes the manifest quota and name', async () => {
    const names: unknown[] = []
    const { fetch, url } = quotaFetch([{ key: (req) => (names.push(req.manifestName), 'all'), concurrent: 10 }])
    const runtime = createRuntime({ fetch, isolation: 'worker' })
    try {
      const manifest = { name: 'quota-probe', version: '1.0.0', capabilities: { http: ['api.test'] }, quotas: { requests: { limit: 1, windowMs: 60_000 } } }
      const probe = await runtime.load({ wasm: capsulePath('probe'), manifest, id: 'quota-probe' })
      expect((await probe.call('parsed', url())).json()).toMatchObject({ status: 200 })
      const out = (await probe.call('parsed', url())).json<{ error: { code: string; message: string; retryAfterMs: number } }>()
      expect(out.error).toMatchObject({ code: 'rate_limited', message: expect.stringContaining('quota "manifest" is used up (requests: 1 per 60000 ms)') })
      expect(out.error.retryAfterMs).toBeGreaterThan(0)
      expect(names).toEqual(['quota-probe', 'quota-probe'])
    } finally {
      await runtime.close()
    }
  })
})
