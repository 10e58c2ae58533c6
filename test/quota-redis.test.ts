// The Redis quota store against a real redis-server: the memory store's semantics row for row, shared counters, options.
import { randomUUID } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { memoryQuotaStore } from '../src/quota/memory-store.js'
import { redisQuotaStore, type RedisQuotaStoreOptions } from '../src/quota/redis-store.js'
import { CONCURRENT_RETRY_MS, type QuotaAnswer, type QuotaCheck, type QuotaStore } from '../src/quota/types.js'
import { hasRedis, testRedis } from './helpers/redis-server.js'

const WINDOW_MS = 60_000
const never = new AbortController().signal

/** One step of a row: acquire a lease with the checks at `only` (default all), or release one. */
type Step =
  | { readonly acquire: string; readonly only?: readonly number[]; readonly expect: 'granted' | readonly [index: number, kind: 'requests' | 'concurrent' | 'responseBytes'] }
  | { readonly release: string; readonly bytes?: number; readonly only?: readonly number[] }

interface Row {
  readonly name: string
  /** The checks; keys are made unique per run, so rows never share counters. */
  readonly checks: readonly Omit<QuotaCheck, 'key'>[]
  /** Check i's key is `keys[i]` (default its index): equal names share counters. */
  readonly keys?: readonly string[]
  readonly steps: readonly Step[]
}

const requests = (limit: number) => ({ requests: { limit, windowMs: WINDOW_MS } })
const bytes = (limit: number) => ({ responseBytes: { limit, windowMs: WINDOW_MS } })

const ROWS: readonly Row[] = [
  { name: 'requests: limit-1 used, the next is granted; limit used, refused; a refusal counts nothing', checks: [requests(3)], steps: [
    { acquire: 'a', expect: 'granted' }, { acquire: 'b', expect: 'granted' }, { acquire: 'c', expect: 'granted' },
    { acquire: 'd', expect: [0, 'requests'] }, { acquire: 'e', expect: [0, 'requests'] },
  ] },
  { name: 'requests: limit 1, the second is refused', checks: [requests(1)], steps: [{ acquire: 'a', expect: 'granted' }, { acquire: 'b', expect: [0, 'requests'] }] },
  { name: 'requests: a release does not give a request back', checks: [requests(1)], steps: [{ acquire: 'a', expect: 'granted' }, { release: 'a' }, { acquire: 'b', expect: [0, 'requests'] }] },
  { name: 'concurrent: limit-1 held, granted; limit held, refused; a release frees one slot', checks: [{ concurrent: 2 }], steps: [
    { acquire: 'a', expect: 'granted' }, { acquire: 'b', expect: 'granted' }, { acquire: 'c', expect: [0, 'concurrent'] },
    { release: 'a' }, { acquire: 'c', expect: 'granted' }, { acquire: 'd', expect: [0, 'concurrent'] },
  ] },
  { name: 'concurrent: releasing a lease never granted frees nothing', checks: [{ concurrent: 1 }], steps: [
    { acquire: 'a', expect: 'granted' }, { release: 'nobody' }, { acquire: 'b', expect: [0, 'concurrent'] },
  ] },
  { name: 'concurrent: a second release of one lease frees nothing more', checks: [{ concurrent: 2 }], steps: [
    { acquire: 'a', expect: 'granted' }, { acquire: 'b', expect: 'granted' }, { release: 'a' }, { release: 'a' },
    { acquire: 'c', expect: 'granted' }, { acquire: 'd', expect: [0, 'concurrent'] },
  ] },
  { name: 'concurrent: a refused lease holds no slot', checks: [{ concurrent: 1 }], steps: [
    { acquire: 'a', expect: 'granted' }, { acquire: 'b', expect: [0, 'concurrent'] }, { release: 'a' },
    { acquire: 'c', expect: 'granted' }, { acquire: 'd', expect: [0, 'concurrent'] },
  ] },
  { name: 'responseBytes: limit-1 used, granted', checks: [bytes(100)], steps: [{ acquire: 'a', expect: 'granted' }, { release: 'a', bytes: 99 }, { acquire: 'b', expect: 'granted' }] },
  { name: 'responseBytes: limit used, refused', checks: [bytes(100)], steps: [{ acquire: 'a', expect: 'granted' }, { release: 'a', bytes: 100 }, { acquire: 'b', expect: [0, 'responseBytes'] }] },
  { name: 'responseBytes: limit+1 used, refused', checks: [bytes(100)], steps: [{ acquire: 'a', expect: 'granted' }, { release: 'a', bytes: 101 }, { acquire: 'b', expect: [0, 'responseBytes'] }] },
  { name: 'responseBytes: the bytes of several releases add up', checks: [bytes(100)], steps: [
    { acquire: 'a', expect: 'granted' }, { acquire: 'b', expect: 'granted' }, { release: 'a', bytes: 60 }, { acquire: 'c', expect: 'granted' },
    { release: 'b', bytes: 40 }, { acquire: 'd', expect: [0, 'responseBytes'] },
  ] },
  { name: 'responseBytes: a release of 0 bytes charges nothing', checks: [bytes(1)], steps: [{ acquire: 'a', expect: 'granted' }, { release: 'a', bytes: 0 }, { acquire: 'b', expect: 'granted' }] },
  { name: 'all-or-nothing: a requests refusal by the second check takes nothing from the first', checks: [requests(3), requests(1)], steps: [
    { acquire: 'a', expect: 'granted' }, { acquire: 'b', expect: [1, 'requests'] }, { acquire: 'c', expect: [1, 'requests'] },
    { acquire: 'd', only: [0], expect: 'granted' }, { acquire: 'e', only: [0], expect: 'granted' }, { acquire: 'f', only: [0], expect: [0, 'requests'] },
  ] },
  { name: 'all-or-nothing: a concurrent refusal by the second check takes no lease in the first', checks: [{ concurrent: 1 }, { concurrent: 1 }], steps: [
    { acquire: 'x', only: [1], expect: 'granted' }, { acquire: 'y', expect: [1, 'concurrent'] }, { acquire: 'z', only: [0], expect: 'granted' },
  ] },
  { name: 'all-or-nothing: a bytes refusal by the second check counts no request in the first', checks: [requests(2), bytes(10)], steps: [
    { acquire: 'a', expect: 'granted' }, { release: 'a', bytes: 10 }, { acquire: 'b', expect: [1, 'responseBytes'] },
    { acquire: 'c', only: [0], expect: 'granted' }, { acquire: 'd', only: [0], expect: [0, 'requests'] },
  ] },
  { name: 'the first check without room is the answer', checks: [requests(1), requests(1)], steps: [{ acquire: 'a', expect: 'granted' }, { acquire: 'b', expect: [0, 'requests'] }] },
  { name: 'one check: requests is answered before concurrent', checks: [{ ...requests(1), concurrent: 1, ...bytes(1) }], steps: [
    { acquire: 'a', expect: 'granted' }, { acquire: 'b', expect: [0, 'requests'] },
  ] },
  { name: 'one check: concurrent is answered before responseBytes', checks: [{ ...requests(5), concurrent: 1, ...bytes(1) }], steps: [
    { acquire: 'a', expect: 'granted' }, { release: 'other', bytes: 1 }, { acquire: 'b', expect: [0, 'concurrent'] },
    { release: 'a' }, { acquire: 'c', expect: [0, 'responseBytes'] },
  ] },
  { name: 'equal keys share counters', keys: ['k', 'k'], checks: [requests(3), requests(3)], steps: [
    { acquire: 'a', expect: 'granted' }, { acquire: 'b', only: [0], expect: 'granted' }, { acquire: 'c', only: [1], expect: [0, 'requests'] },
  ] },
  { name: 'different keys share nothing', checks: [requests(1), requests(1)], steps: [
    { acquire: 'a', only: [0], expect: 'granted' }, { acquire: 'b', only: [1], expect: 'granted' }, { acquire: 'c', only: [0], expect: [0, 'requests'] },
  ] },
  { name: 'the requests and responseBytes of one key count apart', checks: [{ ...requests(2), ...bytes(100) }], steps: [
    { acquire: 'a', expect: 'granted' }, { release: 'a', bytes: 50 }, { acquire: 'b', expect: 'granted' }, { acquire: 'c', expect: [0, 'requests'] },
  ] },
  { name: 'a check with no limits is never refused', checks: [{}], steps: [{ acquire: 'a', expect: 'granted' }, { acquire: 'b', expect: 'granted' }] },
]

/** Runs a row's steps on a store; returns each acquire's answer. */
async function play(store: QuotaStore, row: Row, run: string): Promise<QuotaAnswer[]> {
  const checks: QuotaCheck[] = row.checks.map((limits, i) => ({ key: JSON.stringify([run, row.keys?.[i] ?? i]), ...limits }))
  const pick = (only: readonly number[] | undefined) => (only ? only.map((i) => checks[i]!) : checks)
  const answers: QuotaAnswer[] = []
  for (const step of row.steps) {
    if ('acquire' in step) answers.push(await store.acquire(pick(step.only), { id: `${run}:${step.acquire}`, ttlMs: WINDOW_MS }, never))
    else await store.release(pick(step.only), `${run}:${step.release}`, step.bytes ?? 0)
  }
  return answers
}

/** What a row expects its acquires to answer: the retry hint is checked by range. */
function expected(row: Row): unknown[] {
  return row.steps.flatMap((step) => {
    if (!('acquire' in step)) return []
    if (step.expect === 'granted') return [{ granted: true }]
    const [index, kind] = step.expect
    const retryAfterMs = kind === 'concurrent' ? CONCURRENT_RETRY_MS : expect.toSatisfy((ms: number) => Number.isInteger(ms) && ms >= 1 && ms <= WINDOW_MS)
    return [{ granted: false, index, kind, retryAfterMs }]
  })
}

describe('the memory store (the reference) answers every row', () => {
  it.each(ROWS)('$name', async (row) => {
    expect(await play(memoryQuotaStore(), row, randomUUID())).toEqual(expected(row))
  })
})

describe.skipIf(!hasRedis)('the Redis store, on a real redis-server', () => {
  let redis: { url: string; close(): Promise<void> }
  const stores: QuotaStore[] = []
  /** A store under a fresh prefix; a generous timeoutMs, as these tests are about answers, not time (test/quota-redis-outage.test.ts is). */
  const store = (options: RedisQuotaStoreOptions = {}) => {
    const made = redisQuotaStore({ url: redis.url, prefix: `test:${randomUUID()}:`, timeoutMs: 5000, ...options })
    stores.push(made)
    return made
  }
  beforeAll(async () => {
    redis = await testRedis()
  })
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()))
    await redis?.close()
  })

  it.each(ROWS)('answers like the memory store: $name', async (row) => {
    expect(await play(store(), row, randomUUID())).toEqual(expected(row))
  })

  /** Two stores of one prefix (two connections), and `count` acquires at once alternating between them. */
  const acquireFromTwo = async (checks: readonly QuotaCheck[], count: number, tag: string) => {
    const prefix = `test:${randomUUID()}:`
    const pair = [store({ prefix }), store({ prefix })] as const
    const answers = await Promise.all(Array.from({ length: count }, (_, i) => pair[i % 2]!.acquire(checks, { id: `${tag}${i}`, ttlMs: WINDOW_MS }, never)))
    return { pair, answers }
  }

  it('two stores (two connections) on one Redis share one requests quota exactly: limit 10, 20 at once, 10 granted', async () => {
    const checks = [{ key: 'tenant', requests: { limit: 10, windowMs: WINDOW_MS } }]
    const { answers } = await acquireFromTwo(checks, 20, 'a')
    expect(answers.filter((answer) => answer.granted)).toHaveLength(10)
    expect(answers.filter((answer) => !answer.granted)).toEqual(Array(10).fill({ granted: false, index: 0, kind: 'requests', retryAfterMs: expect.any(Number) }))
  })

  it('two stores share one concurrent quota: limit 4, 20 at once, 4 granted; the other store releasing them frees 4 slots', async () => {
    const checks = [{ key: 'tenant', concurrent: 4 }]
    const { pair, answers } = await acquireFromTwo(checks, 20, 'a')
    const granted = answers.flatMap((answer, i) => (answer.granted ? [i] : []))
    expect(granted).toHaveLength(4)
    expect(answers.filter((answer) => !answer.granted)).toEqual(Array(16).fill({ granted: false, index: 0, kind: 'concurrent', retryAfterMs: CONCURRENT_RETRY_MS }))
    await Promise.all(granted.map((i) => pair[(i + 1) % 2]!.release(checks, `a${i}`, 0)))
    const more = await Promise.all(Array.from({ length: 6 }, (_, i) => pair[i % 2]!.acquire(checks, { id: `b${i}`, ttlMs: WINDOW_MS }, never)))
    expect(more.filter((answer) => answer.granted)).toHaveLength(4)
  })

  it('stores with different prefixes share nothing', async () => {
    const checks = [{ key: 'tenant', requests: { limit: 1, windowMs: WINDOW_MS } }]
    const [a, b] = [store(), store()]
    expect(await a.acquire(checks, { id: 'a', ttlMs: 1000 }, never)).toEqual({ granted: true })
    expect(await b.acquire(checks, { id: 'b', ttlMs: 1000 }, never)).toEqual({ granted: true })
  })

  it('keeps its counters under <prefix><check key>:r, :c and :b, each expiring', async () => {
    const prefix = `test:${randomUUID()}:`
    const quotas = store({ prefix })
    const check = { key: '["q","tenant"]', requests: { limit: 5, windowMs: WINDOW_MS }, concurrent: 2, responseBytes: { limit: 100, windowMs: 2 * WINDOW_MS } }
    await quotas.acquire([check], { id: 'lease-1', ttlMs: 30_000 }, never)
    await quotas.acquire([check], { id: 'lease-2', ttlMs: 30_000 }, never)
    await quotas.release([check], 'lease-1', 42)
    const raw = new Redis(redis.url)
    try {
      const base = prefix + check.key
      expect(await raw.get(`${base}:r`)).toBe('2')
      expect(await raw.zrange(`${base}:c`, '0', '-1')).toEqual(['lease-2'])
      expect(await raw.get(`${base}:b`)).toBe('42')
      const ttls = await Promise.all([`${base}:r`, `${base}:c`, `${base}:b`].map((key) => raw.pttl(key)))
      expect(ttls[0]).toBeGreaterThan(0)
      expect(ttls[0]).toBeLessThan(WINDOW_MS)
      expect(ttls[1]).toBeGreaterThan(0)
      expect(ttls[1]).toBeLessThanOrEqual(30_000)
      expect(ttls[2]).toBeGreaterThan(WINDOW_MS)
    } finally {
      raw.disconnect()
    }
  })

  it('a window rolls over: after the retryAfterMs a refusal reports, the request is granted', async () => {
    const quotas = store()
    const checks = [{ key: 'k', requests: { limit: 2, windowMs: 300 } }]
    const lease = (id: string) => ({ id, ttlMs: 1000 })
    expect(await quotas.acquire(checks, lease('a'), never)).toEqual({ granted: true })
    expect(await quotas.acquire(checks, lease('b'), never)).toEqual({ granted: true })
    const refused = await quotas.acquire(checks, lease('c'), never)
    expect(refused).toMatchObject({ granted: false, index: 0, kind: 'requests' })
    const retryAfterMs = (refused as { retryAfterMs: number }).retryAfterMs
    expect(retryAfterMs).toBeGreaterThanOrEqual(1)
    expect(retryAfterMs).toBeLessThanOrEqual(300)
    await new Promise((resolve) => setTimeout(resolve, retryAfterMs))
    expect(await quotas.acquire(checks, lease('d'), never)).toEqual({ granted: true })
  })

  it('a lease never released stops counting after its ttlMs, while a longer lease on the key lives on', async () => {
    const quotas = store()
    const checks = [{ key: 'k', concurrent: 2 }]
    expect(await quotas.acquire(checks, { id: 'long', ttlMs: WINDOW_MS }, never)).toEqual({ granted: true })
    expect(await quotas.acquire(checks, { id: 'crashed', ttlMs: 50 }, never)).toEqual({ granted: true })
    expect(await quotas.acquire(checks, { id: 'b', ttlMs: 50 }, never)).toMatchObject({ granted: false, kind: 'concurrent' })
    await new Promise((resolve) => setTimeout(resolve, 51))
    expect(await quotas.acquire(checks, { id: 'c', ttlMs: 50 }, never)).toEqual({ granted: true })
    expect(await quotas.acquire(checks, { id: 'd', ttlMs: 50 }, never)).toMatchObject({ granted: false, kind: 'concurrent' })
  })

  it('renew: a live lease lives ttl from the renewal (its set expires no sooner); a released one stays gone', async () => {
    const prefix = `test:${randomUUID()}:`
    const quotas = store({ prefix })
    const checks = [{ key: 'k', concurrent: 2 }]
    expect(await quotas.acquire(checks, { id: 'short', ttlMs: 50 }, never)).toEqual({ granted: true })
    expect(await quotas.acquire(checks, { id: 'renewed', ttlMs: 50 }, never)).toEqual({ granted: true })
    await quotas.renew!(checks, 'renewed', WINDOW_MS)
    const raw = new Redis(redis.url)
    try {
      expect(await raw.pttl(`${prefix}k:c`)).toBeGreaterThan(50)
      await new Promise((resolve) => setTimeout(resolve, 51))
      expect(await quotas.acquire(checks, { id: 'later', ttlMs: 50 }, never)).toEqual({ granted: true })
      expect(await quotas.acquire(checks, { id: 'refused', ttlMs: 50 }, never)).toMatchObject({ granted: false, kind: 'concurrent' })
      await quotas.release(checks, 'renewed', 0)
      await quotas.renew!(checks, 'renewed', WINDOW_MS)
      expect(await raw.zscore(`${prefix}k:c`, 'renewed')).toBeNull()
      expect(await quotas.acquire(checks, { id: 'after', ttlMs: 50 }, never)).toEqual({ granted: true })
    } finally {
      raw.disconnect()
    }
  })

  it("a host whose clock is a day behind shares leases and windows exactly: the store reads the server's clock", async () => {
    const prefix = `test:${randomUUID()}:`
    const checks = [{ key: 'k', concurrent: 1, requests: { limit: 3, windowMs: WINDOW_MS } }]
    const script = `
      const real = Date.now
      Date.now = () => real() - 86_400_000
      const { redisQuotaStore } = await import('./dist/index.js')
      const store = redisQuotaStore({ url: process.argv[1], prefix: process.argv[2], timeoutMs: 5000 })
      const answer = await store.acquire(${JSON.stringify(checks)}, { id: 'behind', ttlMs: 60000 }, new AbortController().signal)
      await store.close()
      console.log(JSON.stringify(answer))`
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script, redis.url, prefix], { cwd: new URL('..', import.meta.url), encoding: 'utf8' })
    expect(JSON.parse(out)).toEqual({ granted: true })
    const quotas = store({ prefix })
    expect(await quotas.acquire(checks, { id: 'here', ttlMs: 60_000 }, never)).toEqual({ granted: false, index: 0, kind: 'concurrent', retryAfterMs: CONCURRENT_RETRY_MS })
    await quotas.release(checks, 'behind', 0)
    expect(await quotas.acquire(checks, { id: 'here', ttlMs: 60_000 }, never)).toEqual({ granted: true })
    expect(await quotas.acquire(checks, { id: 'third', ttlMs: 60_000 }, never)).toMatchObject({ granted: false, kind: 'concurrent' })
    await quotas.release(checks, 'here', 0)
    expect(await quotas.acquire(checks, { id: 'third', ttlMs: 60_000 }, never)).toEqual({ granted: true })
    await quotas.release(checks, 'third', 0)
    // The behind host's request counts in the same window: 3 of 3.
    expect(await quotas.acquire(checks, { id: 'fourth', ttlMs: 60_000 }, never)).toMatchObject({ granted: false, index: 0, kind: 'requests' })
  })

  it('no checks: granted without asking Redis; after close(): unavailable, and release still resolves', async () => {
    const quotas = store()
    expect(await quotas.acquire([], { id: 'a', ttlMs: 1000 }, never)).toEqual({ granted: true })
    await quotas.close()
    expect(await quotas.acquire([{ key: 'k', concurrent: 1 }], { id: 'b', ttlMs: 1000 }, never)).toEqual({ granted: false, index: -1, kind: 'unavailable', retryAfterMs: 1000 })
    await expect(quotas.release([{ key: 'k', concurrent: 1 }], 'b', 10)).resolves.toBeUndefined()
  })

  it('uses a client the host made, and leaves it open on close()', async () => {
    const client = new Redis(redis.url, { enableOfflineQueue: false, autoResendUnfulfilledCommands: false, lazyConnect: true })
    await client.connect()
    try {
      const quotas = redisQuotaStore({ client, prefix: `test:${randomUUID()}:` })
      const checks = [{ key: 'k', requests: { limit: 1, windowMs: WINDOW_MS } }]
      expect(await quotas.acquire(checks, { id: 'a', ttlMs: 1000 }, never)).toEqual({ granted: true })
      expect(await quotas.acquire(checks, { id: 'b', ttlMs: 1000 }, never)).toMatchObject({ granted: false, kind: 'requests' })
      await quotas.close()
      expect(await client.ping()).toBe('PONG')
    } finally {
      client.disconnect()
    }
  })
})

describe('redisQuotaStore options', () => {
  it.each([
    ['not an object', 'redis://x', 'redisQuotaStore: options must be an object, not a string'],
    ['url not a string', { url: 6379 }, 'redisQuotaStore: url must be a string, not a number'],
    ['url of another scheme', { url: 'http://127.0.0.1:6379' }, 'redisQuotaStore: url must be a redis:// or rediss:// URL, not "http://127.0.0.1:6379"'],
    ['url not a URL', { url: 'redis://[::1' }, 'redisQuotaStore: url must be a redis:// or rediss:// URL, not "redis://[::1"'],
    ['client not a client', { client: {} }, 'redisQuotaStore: client must be an ioredis client, not an object'],
    ['url and client', { url: 'redis://127.0.0.1', client: { defineCommand() {} } }, 'redisQuotaStore: give url or client, not both'],
    ['prefix not a string', { prefix: 1 }, 'redisQuotaStore: prefix must be a string, not a number'],
    ['onUnavailable unknown', { onUnavailable: 'allow' }, 'redisQuotaStore: onUnavailable must be "deny" or "local", not "allow"'],
    ['timeoutMs 0', { timeoutMs: 0 }, 'redisQuotaStore: timeoutMs must be a whole number of ms from 1 to 2147483647, not 0'],
    ['timeoutMs fractional', { timeoutMs: 1.5 }, 'redisQuotaStore: timeoutMs must be a whole number of ms from 1 to 2147483647, not 1.5'],
    ['timeoutMs past a timer', { timeoutMs: 2 ** 31 }, 'redisQuotaStore: timeoutMs must be a whole number of ms from 1 to 2147483647, not 2147483648'],
    ['timeoutMs a string', { timeoutMs: '250' }, 'redisQuotaStore: timeoutMs must be a whole number of ms from 1 to 2147483647, not "250"'],
    ['a misspelt option', { timoutMs: 250 }, 'redisQuotaStore: unknown option "timoutMs"; did you mean "timeoutMs"?'],
  ])('%s is a TypeError naming it', (_name, options, message) => {
    expect(() => redisQuotaStore(options as RedisQuotaStoreOptions)).toThrow(new TypeError(message))
  })

  it('the boundary values are accepted', async () => {
    for (const options of [{ url: 'redis://127.0.0.1:1' }, { url: 'redis://127.0.0.1:1', timeoutMs: 1 }, { url: 'redis://127.0.0.1:1', timeoutMs: 2 ** 31 - 1 }, { url: 'redis://127.0.0.1:1', prefix: '' }, { url: 'rediss://127.0.0.1:1/2' }, { url: 'redis://127.0.0.1:1', onUnavailable: 'local' as const }]) {
      await redisQuotaStore(options).close()
    }
  })
})

describe('loading', () => {
  it('importing capsule-host does not load ioredis; creating a Redis store does', () => {
    const script = `
      import { createRequire } from 'node:module'
      const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((path) => path.includes('/node_modules/ioredis/'))
      const { redisQuotaStore } = await import('./dist/index.js')
      const before = loaded()
      const store = redisQuotaStore({ url: 'redis://127.0.0.1:1', timeoutMs: 200 })
      const answer = await store.acquire([{ key: 'k', concurrent: 1 }], { id: 'a', ttlMs: 1000 }, new AbortController().signal)
      await store.close()
      console.log(JSON.stringify({ before, after: loaded(), answer }))`
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: new URL('..', import.meta.url), encoding: 'utf8' })
    expect(JSON.parse(out)).toEqual({ before: false, after: true, answer: { granted: false, index: -1, kind: 'unavailable', retryAfterMs: 1000 } })
  })
})
