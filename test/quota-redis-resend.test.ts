// A dropped connection that lost an acquire's reply never makes Redis count the request twice (ioredis' resend is off, and a host client with it on is refused).
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
  it('one request is counted once, also when the connection drops after Redis ran the acquire', async () => {
    const prefix = `resend:${randomUUID()}:`
    // As docs/fleet.md says to make a host client: enableOfflineQueue false (the rest ioredis' defaults).
    const client = new Redis(`redis://127.0.0.1:${proxyPort}`, { enableOfflineQueue: false, retryStrategy: () => 20 })
    // With the fix the store refuses this client (TypeError); made as the fix asks (autoResendUnfulfilledCommands: false too) it counts once.
    client.on('error', () => {})
    const raw = new Redis(redis.url)
    let store: ReturnType<typeof redisQuotaStore>
    try {
      store = redisQuotaStore({ client, prefix, timeoutMs: 5000 })
    } catch (error) {
      // The fix: such a client is refused when the store is made.
      expect(error).toBeInstanceOf(TypeError)
      client.disconnect()
      raw.disconnect()
      return
    }
    try {
      await new Promise((resolve) => client.once('ready', resolve))
      const never = new AbortController().signal
      const check: QuotaCheck = { key: 'k', requests: { limit: 10, windowMs: 60_000 } }
      // Loads the script (no NOSCRIPT round trip later).
      expect(await store.acquire([{ ...check, key: 'warm' }], { id: 'w', ttlMs: 1000 }, never)).toEqual({ granted: true })
      const lost = new Promise<void>((resolve) => (dropNextReply = resolve))
      const answer = store.acquire([check], { id: 'one', ttlMs: 1000 }, never)
      await lost
      await answer
      // Before the fix: '2' (ioredis' autoResendUnfulfilledCommands ran the acquire again on reconnect).
      expect(await raw.get(checkKeys(prefix, check)[0])).toBe('1')
    } finally {
      await store.close()
      client.disconnect()
      raw.disconnect()
    }
  })
})
