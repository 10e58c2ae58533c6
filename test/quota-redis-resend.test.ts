// A dropped connection that lost an acquire's reply never makes Redis count the request twice: the store's own client never resends.
import { randomUUID } from 'node:crypto'
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { redisQuotaStore, type QuotaCheck } from '../src/index.js'
import { checkKeys } from '../src/quota/redis-scripts.js'
import { canSpawnRedis, spawnRedis, type SpawnedRedis } from './helpers/redis-server.js'

let redis: SpawnedRedis
let proxy: Server
let proxyPort: number
/** When set, the next bytes Redis sends back are dropped and the connection is cut (the reply is lost). */
let dropNextReply: (() => void) | undefined
const sockets = new Set<Socket>()

beforeAll(async () => {
  if (!canSpawnRedis) return
  redis = await spawnRedis()
  proxy = createServer((client) => {
    const upstream = connect(redis.port, '127.0.0.1')
    sockets.add(client).add(upstream)
    client.on('data', (chunk) => upstream.write(chunk))
    upstream.on('data', (chunk) => {
      if (dropNextReply) {
        const dropped = dropNextReply
        dropNextReply = undefined
        client.destroy()
        upstream.destroy()
        return dropped()
      }
      client.write(chunk)
    })
    const end = () => { client.destroy(); upstream.destroy() }
    client.on('close', end).on('error', end)
    upstream.on('close', end).on('error', end)
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  proxyPort = (proxy.address() as AddressInfo).port
})
afterAll(async () => {
  if (!canSpawnRedis) return
  for (const socket of sockets) socket.destroy()
  await new Promise((resolve) => proxy.close(resolve))
  await redis.close()
})

describe.skipIf(!canSpawnRedis)('a lost acquire reply', () => {
  it("the store's own client counts one request once, also when the connection drops after Redis ran the acquire", async () => {
    const prefix = `resend:${randomUUID()}:`
    const store = redisQuotaStore({ url: `redis://127.0.0.1:${proxyPort}`, prefix, timeoutMs: 5000 })
    const raw = new Redis(redis.url)
    try {
      const never = new AbortController().signal
      const check: QuotaCheck = { key: 'k', requests: { limit: 10, windowMs: 60_000 } }
      // Connects and loads the script (no NOSCRIPT round trip later).
      expect(await store.acquire([{ ...check, key: 'warm' }], { id: 'w', ttlMs: 1000 }, never)).toEqual({ granted: true })
      const lost = new Promise<void>((resolve) => (dropNextReply = resolve))
      const answer = store.acquire([check], { id: 'one', ttlMs: 1000 }, never)
      await lost
      // The reply is lost: the store answers unavailable, it does not resend.
      expect((await answer).granted).toBe(false)
      // A resent acquire (ioredis' autoResendUnfulfilledCommands) would have made it '2'.
      expect(await raw.get(checkKeys(prefix, check)[0])).toBe('1')
    } finally {
      await store.close()
      raw.disconnect()
    }
  })
})
