// A Redis quota store when its redis-server is killed, paused or restarted: fail closed or local limits, never a hang, shared again after.
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { redisQuotaStore, type AuditEvent, type QuotaAnswer, type QuotaCheck, type QuotaRule, type QuotaStore, type RedisQuotaStoreOptions } from '../src/index.js'
import { UNAVAILABLE_RETRY_MS } from '../src/quota/types.js'
import { closeAllFetches, ctx, errorOf, ok, tableResolver, testFetch } from './helpers/fetch.js'
import { lease, never, requests, UNAVAILABLE } from './helpers/quota.js'
import { canSpawnRedis, spawnRedis, type SpawnedRedis } from './helpers/redis-server.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'


let redis: SpawnedRedis
let prefix: string
const stores: QuotaStore[] = []
const clients: Redis[] = []

/** A store on this test's redis-server, under this test's prefix. */
function store(options: RedisQuotaStoreOptions = {}): QuotaStore {
  const made = redisQuotaStore({ ...(options.client ? {} : { url: redis.url }), prefix, ...options })
  stores.push(made)
  return made
}

/** A connected client as a host would make it for the store, so the test can wait for its 'ready' after a restart. */
async function hostClient(): Promise<Redis> {
  const client = new Redis(redis.url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false, retryStrategy: () => 20 })
  client.on('error', () => {})
  clients.push(client)
  await client.connect()
  return client
}

/** Asks until Redis answers (not `unavailable`), waiting the retryAfterMs each refusal reports; at most 10 times. */
async function untilRedisAnswers(quotas: QuotaStore, checks: QuotaCheck[], id: string): Promise<QuotaAnswer> {
  for (let attempt = 0; ; attempt++) {
    const answer = await quotas.acquire(checks, lease(`${id}-${attempt}`), never)
    if (answer.granted || answer.kind !== 'unavailable' || attempt === 9) return answer
    await new Promise((resolve) => setTimeout(resolve, answer.retryAfterMs))
  }
}

/**
 * A 'deny' store that Redis has answered once (on a key of its own), so a short timeoutMs
 * measures Redis, not the connection a loaded machine makes slowly; it also loads the scripts
 * into the server (its script cache serves every connection).
 */
async function answered(quotas: QuotaStore): Promise<QuotaStore> {
  expect(await untilRedisAnswers(quotas, [{ key: 'warm-up', requests: { limit: 1000, windowMs: 60_000 } }], 'warm-up')).toEqual({ granted: true })
  return quotas
}

/** A connected host client whose server has the scripts loaded: a store on it answers in one round trip. */
async function answeringClient(): Promise<Redis> {
  const client = await hostClient()
  await answered(store({ client }))
  return client
}

beforeEach(async () => {
  if (!canSpawnRedis) return
  redis = await spawnRedis()
  prefix = `test:${randomUUID()}:`
})
afterEach(async () => {
  if (!canSpawnRedis) return
  // The server first: a store's close() waits up to its timeoutMs for QUIT on a paused one.
  await redis.close()
  await closeAllFetches()
  await Promise.all(stores.splice(0).map((s) => s.close()))
  for (const client of clients.splice(0)) client.disconnect()
})

describe.skipIf(!canSpawnRedis)('the Redis store when Redis fails', () => {
  it("deny: killed, an acquire answers unavailable at once; restarted, Redis answers again and the quota is shared again", async () => {
    const quotas = await answered(store())
    expect(await quotas.acquire(requests(2), lease('a'), never)).toEqual({ granted: true })
    await redis.kill()
    expect(await quotas.acquire(requests(2), lease('b'), never)).toEqual(UNAVAILABLE)
    await expect(quotas.release(requests(2), 'a', 10)).resolves.toBeUndefined()
    await redis.restart()
    expect(await untilRedisAnswers(quotas, requests(2), 'c')).toEqual({ granted: true })
    const other = store()
    expect(await untilRedisAnswers(other, requests(2), 'd')).toEqual({ granted: true })
    expect(await quotas.acquire(requests(2), lease('e'), never)).toMatchObject({ granted: false, index: 0, kind: 'requests' })
  })

  it('local: killed, the same checks are answered from local limits; restarted, shared again', async () => {
    const client = await answeringClient()
    const quotas = store({ client, onUnavailable: 'local' })
    const other = store({ client: await hostClient() })
    expect(await quotas.acquire(requests(2), lease('a'), never)).toEqual({ granted: true })
    await redis.kill()
    expect(await quotas.acquire(requests(2), lease('b'), never)).toEqual({ granted: true })
    expect(await quotas.acquire(requests(2), lease('c'), never)).toEqual({ granted: true })
    expect(await quotas.acquire(requests(2), lease('d'), never)).toMatchObject({ granted: false, index: 0, kind: 'requests' })
    expect(await other.acquire(requests(2), lease('o'), never)).toEqual(UNAVAILABLE)
    // Not events.once: it rejects on the 'error' each failed reconnect emits.
    const ready = new Promise((resolve) => client.once('ready', resolve))
    await redis.restart()
    await ready
    // Local limits would refuse (2 of 2 taken there); the restarted Redis is empty and grants.
    expect(await quotas.acquire(requests(2), lease('e'), never)).toEqual({ granted: true })
    expect(await untilRedisAnswers(other, requests(2), 'f')).toEqual({ granted: true })
    expect(await quotas.acquire(requests(2), lease('g'), never)).toMatchObject({ granted: false, index: 0, kind: 'requests' })
  })

  it('local: a lease granted locally is released locally', async () => {
    const quotas = store({ url: redis.url, onUnavailable: 'local' })
    const checks = [{ key: 'k', concurrent: 1 }]
    await redis.kill()
    expect(await quotas.acquire(checks, lease('a'), never)).toEqual({ granted: true })
    expect(await quotas.acquire(checks, lease('b'), never)).toMatchObject({ granted: false, kind: 'concurrent' })
    await quotas.release(checks, 'a', 0)
    expect(await quotas.acquire(checks, lease('c'), never)).toEqual({ granted: true })
  })

  it('paused (SIGSTOP): an acquire answers unavailable after timeoutMs, and the lease Redis grants it late holds no slot', async () => {
    const quotas = await answered(store({ timeoutMs: 150 }))
    const checks = [{ key: 'k', concurrent: 1 }]
    redis.pause()
    // Answered unavailable, the caller never releases 'late'.
    expect(await quotas.acquire(checks, lease('late'), never)).toEqual(UNAVAILABLE)
    redis.resume()
    // Redis runs the late acquire, then the release the store sent after it on the same connection.
    expect(await quotas.acquire(checks, lease('next'), never)).toEqual({ granted: true })
    const raw = new Redis(redis.url)
    clients.push(raw)
    expect(await raw.zrange(`${prefix}k:c`, '0', '-1')).toEqual(['next'])
  })

  it("paused: an acquire's signal ends the wait before timeoutMs", async () => {
    const quotas = await answered(store({ timeoutMs: 60_000 }))
    redis.pause()
    const controller = new AbortController()
    const answer = quotas.acquire(requests(5), lease('a'), controller.signal)
    controller.abort()
    expect(await answer).toEqual(UNAVAILABLE)
    const aborted = new AbortController()
    aborted.abort()
    expect(await quotas.acquire(requests(5), lease('b'), aborted.signal)).toEqual(UNAVAILABLE)
  })

  it('paused, local: the acquire is answered from local limits after timeoutMs', async () => {
    const quotas = store({ client: await answeringClient(), timeoutMs: 100, onUnavailable: 'local' })
    expect(await quotas.acquire(requests(1), lease('a'), never)).toEqual({ granted: true })
    redis.pause()
    expect(await quotas.acquire(requests(1), lease('b'), never)).toEqual({ granted: true })
    expect(await quotas.acquire(requests(1), lease('c'), never)).toMatchObject({ granted: false, index: 0, kind: 'requests' })
  })

  it('paused: close() resolves (QUIT unanswered, the connection is dropped), and later acquires answer unavailable', async () => {
    const quotas = await answered(store({ timeoutMs: 100 }))
    redis.pause()
    await quotas.close()
    redis.resume()
    expect(await quotas.acquire(requests(5), lease('b'), never)).toEqual(UNAVAILABLE)
  })

  it('never reached (nothing listens): unavailable, and local limits with local', async () => {
    await redis.kill()
    expect(await store().acquire(requests(1), lease('a'), never)).toEqual(UNAVAILABLE)
    expect(await store({ onUnavailable: 'local' }).acquire(requests(1), lease('b'), never)).toEqual({ granted: true })
  })
})

describe.skipIf(!canSpawnRedis)('a safe fetch on a Redis store when Redis fails', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startServer((_req, res) => res.end('ok'))
  })
  afterAll(async () => {
    await closeAllServers()
  })

  /** A safe fetch with a 5 s request deadline on a store Redis has answered; its audit events. */
  async function host(quotas: QuotaRule[], options: RedisQuotaStoreOptions) {
    const quotaStore = options.onUnavailable === 'local' ? store({ client: await answeringClient(), ...options }) : await answered(store(options))
    const events: AuditEvent[] = []
    const resolver = tableResolver({ 'api.test': ['127.0.0.1'] })
    const fetch = testFetch({ rules: { host: 'api.test', httpsOnly: false, port: server.port }, resolver, quotas, quotaStore, limits: { timeoutMs: 5000 }, onRequest: (e) => events.push(e) })
    return { fetch, events, resolver }
  }
  const input = () => JSON.stringify({ url: `http://api.test:${server.port}/` })

  const STORE_DOWN = { code: 'rate_limited', message: `the quota store did not answer, so the request is refused; retry after ${UNAVAILABLE_RETRY_MS} ms`, retryAfterMs: UNAVAILABLE_RETRY_MS }

  it.each([
    ['killed', (r: SpawnedRedis) => r.kill()],
    ['paused (SIGSTOP)', (r: SpawnedRedis) => r.pause()],
  ])('deny, Redis %s: rate_limited decided by quota-store before the request deadline, and nothing resolved or sent', async (_name, fail) => {
    const { fetch, events, resolver } = await host([{ key: 'capsule', requests: { limit: 100, windowMs: 60_000 } }], { timeoutMs: 200, onUnavailable: 'deny' })
    ok(await fetch.request(input(), ctx('d')))
    await fail(redis)
    const before = { asked: resolver.asked.length, requests: server.requests.length }
    // A wait past the 5 s deadline would end as `timeout`; the store's answer comes after its 200 ms.
    expect(errorOf(await fetch.request(input(), ctx('d')))).toEqual(STORE_DOWN)
    expect(events.at(-1)).toMatchObject({ allowed: false, code: 'rate_limited', decidedBy: 'quota-store', reason: 'quota store unavailable', retryAfterMs: UNAVAILABLE_RETRY_MS })
    expect({ asked: resolver.asked.length, requests: server.requests.length }).toEqual(before)
  })

  it('deny, Redis paused: the refused request leaves no concurrent slot held once Redis runs its acquire late', async () => {
    const { fetch } = await host([{ key: 'capsule', concurrent: 1 }], { timeoutMs: 200, onUnavailable: 'deny' })
    ok(await fetch.request(input(), ctx('p')))
    redis.pause()
    expect(errorOf(await fetch.request(input(), ctx('p')))).toEqual(STORE_DOWN)
    redis.resume()
    ok(await fetch.request(input(), ctx('p')))
  })

  it('local, Redis killed: requests are served under the local limits, then refused by them', async () => {
    const { fetch, events } = await host([{ key: 'capsule', id: 'per-capsule', requests: { limit: 2, windowMs: 60_000 } }], { timeoutMs: 200, onUnavailable: 'local' })
    ok(await fetch.request(input(), ctx('l')))
    await redis.kill()
    ok(await fetch.request(input(), ctx('l')))
    ok(await fetch.request(input(), ctx('l')))
    expect(errorOf(await fetch.request(input(), ctx('l')))).toMatchObject({ code: 'rate_limited', message: expect.stringMatching(/^quota "per-capsule" is used up/) })
    expect(events.at(-1)).toMatchObject({ decidedBy: 'quota:per-capsule', reason: 'over quota' })
  })
})
