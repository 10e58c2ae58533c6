// The Redis store's first connection made slowly (its TLS handshake held on loopback): acquires that gave up meanwhile are never sent.
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { createInterface } from 'node:readline'
import { TLSSocket } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hasRedis, testRedis } from './helpers/redis-server.js'

const tls = (name: string) => new URL(`../fixtures/tls/${name}`, import.meta.url)

/**
 * A TLS front for Redis on 127.0.0.1 (the fixture certificate) that holds each connection's
 * handshake until `release()`: the client's TCP connect succeeds, its connection is not ready.
 */
async function heldTlsFront(redisPort: number) {
  const credentials = { cert: readFileSync(tls('server.pem')), key: readFileSync(tls('server-key.pem')) }
  const waiting: Socket[] = []
  const sockets = new Set<Socket>()
  let arrived!: () => void
  const first = new Promise<void>((resolve) => (arrived = resolve))
  const server = createServer((raw) => {
    sockets.add(raw)
    raw.on('error', () => {})
    raw.pause()
    waiting.push(raw)
    arrived()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const release = () => {
    for (const raw of waiting.splice(0)) {
      const secure = new TLSSocket(raw, { isServer: true, ...credentials })
      const upstream = connect(redisPort, '127.0.0.1')
      sockets.add(upstream)
      for (const end of [secure, upstream]) end.on('error', () => {})
      secure.pipe(upstream).pipe(secure)
      raw.resume()
    }
  }
  const close = () => {
    for (const socket of sockets) socket.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  }
  return { port: (server.address() as AddressInfo).port, first, release, close }
}

/** The host process: one acquire while the handshake is held, then acquires until one is granted (waiting each retryAfterMs). */
const HOST = `
  const { redisQuotaStore } = await import('./dist/index.js')
  const [url, prefix] = process.argv.slice(1)
  const store = redisQuotaStore({ url, prefix, timeoutMs: 100 })
  const checks = [{ key: 'k', requests: { limit: 100, windowMs: 60000 } }]
  const signal = new AbortController().signal
  console.log(JSON.stringify(await store.acquire(checks, { id: 'early', ttlMs: 1000 }, signal)))
  let answer, attempts = 0
  do {
    if (answer) await new Promise((resolve) => setTimeout(resolve, answer.retryAfterMs))
    answer = await store.acquire(checks, { id: 'later-' + attempts, ttlMs: 1000 }, signal)
  } while (!answer.granted && ++attempts < 10)
  console.log(JSON.stringify({ answer, attempts }))
  await store.close()`

describe.skipIf(!hasRedis)('the first connection to Redis', () => {
  let redis: { url: string; close(): Promise<void> }
  beforeAll(async () => {
    redis = await testRedis()
  })
  afterAll(async () => {
    await redis?.close()
  })

  it('acquires that gave up while it was being made are not sent once it is: only the granted one counts', async () => {
    const front = await heldTlsFront(Number(new URL(redis.url).port))
    const prefix = `test:${randomUUID()}:`
    const child = spawn(process.execPath, ['--input-type=module', '-e', HOST, `rediss://127.0.0.1:${front.port}`, prefix], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: { ...process.env, NODE_EXTRA_CA_CERTS: fileURLToPath(tls('ca.pem')) },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const exited = once(child, 'exit')
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
    try {
      await front.first
      expect(JSON.parse((await lines.next()).value as string)).toEqual({ granted: false, index: -1, kind: 'unavailable', retryAfterMs: 1000 })
      front.release()
      expect(JSON.parse((await lines.next()).value as string)).toMatchObject({ answer: { granted: true } })
      expect(await exited).toEqual([0, null])
      const raw = new Redis(redis.url)
      try {
        expect(await raw.get(`${prefix}k:r`)).toBe('1')
      } finally {
        raw.disconnect()
      }
    } finally {
      child.kill()
      await front.close()
    }
  })
})
