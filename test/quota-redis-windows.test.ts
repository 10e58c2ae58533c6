// Redis window edges on the server's own clock (judged only in transactions that ran within one ms): a 1 ms window, and a counter that lost its expiry.
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { redisQuotaStore, type QuotaCheck } from '../src/index.js'
import { ACQUIRE_LUA, acquireArguments, checkKeys } from '../src/quota/redis-scripts.js'
import { canSpawnRedis, spawnRedis, type SpawnedRedis } from './helpers/redis-server.js'

let redis: SpawnedRedis
let raw: Redis
beforeAll(async () => {
  if (!canSpawnRedis) return
  redis = await spawnRedis()
  raw = new Redis(redis.url)
})
afterAll(async () => {
  if (!canSpawnRedis) return
  raw.disconnect()
  await redis.close()
})

/** A TIME reply as a whole server millisecond. */
const msOf = ([seconds, micros]: [string, string]) => Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)

/**
 * Runs the acquire script between two TIME readings in one MULTI/EXEC; returns the first reading's
 * ms `now`, the reply, the last ms the `:r` key is alive (Redis expires a key when now > PEXPIRETIME),
 * and whether both readings fell in the same ms. Redis 7 caches its clock for the keys' expiry
 * inside a transaction, but the TIME command (ours and the script's) may still cross a ms boundary
 * between two commands: only a transaction whose readings agree says which ms the script ran in.
 */
async function acquireAtFrozenTime(prefix: string, check: QuotaCheck) {
  const [r] = checkKeys(prefix, check)
  const args = acquireArguments(prefix, [check], { id: randomUUID(), ttlMs: 1000 })
  const replies = await raw.multi().time().eval(ACQUIRE_LUA, ...(args as [number, ...string[]])).time().call('PEXPIRETIME', r).exec()
  const [[, before], [, reply], [, after], [, expireAt]] = replies as [[null, [string, string]], [null, unknown], [null, [string, string]], [null, number]]
  return { now: msOf(before), reply, lastAliveMs: expireAt, oneMs: msOf(before) === msOf(after) }
}

describe.skipIf(!canSpawnRedis)('Redis windows against the memory store', () => {
  it('a window of 1 ms, limit 1: the next ms starts a new window (as the memory store: now < start + windowMs)', async () => {
    const prefix = `w1:${randomUUID()}:`
    const check: QuotaCheck = { key: 'k', requests: { limit: 1, windowMs: 1 } }
    // Not a sleep: asks again until the server's clock has moved on; only an answer at exactly start + 1 is judged.
    for (let round = 0; round < 200; round++) {
      const first = await acquireAtFrozenTime(`${prefix}${round}:`, check)
      expect(first.reply).toEqual([-1])
      if (!first.oneMs) continue // the script may have run in the next ms: this round says nothing
      for (;;) {
        const next = await acquireAtFrozenTime(`${prefix}${round}:`, check)
        if (next.now === first.now) continue
        if (next.now === first.now + 1 && next.oneMs) {
          // Before the fix: [0, 'requests', 1] (the 1 ms window lasts 2 ms in Redis).
          expect(next.reply).toEqual([-1])
          return
        }
        break
      }
    }
    throw new Error('never asked at exactly start + 1 ms')
  })

  it('a request counter without an expiry (PERSIST by an operator, a restore) never locks the quota for good with a 1 ms retry hint', async () => {
    const prefix = `p:${randomUUID()}:`
    const check: QuotaCheck = { key: 'k', requests: { limit: 1, windowMs: 60_000 } }
    const store = redisQuotaStore({ url: redis.url, prefix, timeoutMs: 2000 })
    try {
      const never = new AbortController().signal
      expect(await store.acquire([check], { id: 'a', ttlMs: 1000 }, never)).toEqual({ granted: true })
      await raw.persist(checkKeys(prefix, check)[0])
      const next = await store.acquire([check], { id: 'b', ttlMs: 1000 }, never)
      // Before the fix: { granted: false, kind: 'requests', retryAfterMs: 1 }, and the counter never expires (refused for good).
      expect(next).not.toMatchObject({ granted: false, retryAfterMs: 1 })
      expect(await raw.pttl(checkKeys(prefix, check)[0])).toBeGreaterThan(0)
    } finally {
      await store.close()
    }
  })
})
