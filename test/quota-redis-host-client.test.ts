// A host's own ioredis client: refused unless made without the offline queue and resends, which would count requests the store answered unavailable.
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { redisQuotaStore, type QuotaStore } from '../src/index.js'
import { lease, never, requests, UNAVAILABLE } from './helpers/quota.js'
import { canSpawnRedis, spawnRedis, type SpawnedRedis } from './helpers/redis-server.js'


let redis: SpawnedRedis
let prefix: string
const stores: QuotaStore[] = []
const clients: Redis[] = []
beforeEach(async () => {
  if (!canSpawnRedis) return
  redis = await spawnRedis()
  prefix = `test:${randomUUID()}:`
})
afterEach(async () => {
  if (!canSpawnRedis) return
  await redis.close()
  await Promise.all(stores.splice(0).map((s) => s.close()))
  for (const client of clients.splice(0)) client.disconnect()
})

describe.skipIf(!canSpawnRedis)('a host client with the offline queue on', () => {
  it('is refused by redisQuotaStore, or a request refused as unavailable is counted once Redis is back', async () => {
    const client = new Redis(redis.url, { retryStrategy: () => 20 })
    client.on('error', () => {})
    clients.push(client)
    await new Promise((resolve) => client.once('ready', resolve))
    await redis.kill()
    // Either the store refuses such a client at once...
    let quotas: QuotaStore
    try {
      quotas = redisQuotaStore({ client, prefix, timeoutMs: 100 })
    } catch (error) {
      expect(error).toBeInstanceOf(TypeError)
      return
    }
    stores.push(quotas)
    // ...or a refused request must not be counted. Redis is down: unavailable after timeoutMs.
    expect(await quotas.acquire(requests(1), lease('refused'), never)).toEqual(UNAVAILABLE)
    const ready = new Promise((resolve) => client.once('ready', resolve))
    await redis.restart()
    await ready
    // The one request served in this window: it must be granted (limit 1, nothing was served yet).
    // Before the fix: { granted: false, index: 0, kind: 'requests' } (the queued acquire ran on reconnect).
    expect(await quotas.acquire(requests(1), lease('first-served'), never)).toEqual({ granted: true })
  })
})
