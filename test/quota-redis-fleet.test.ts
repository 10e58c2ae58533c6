// Quotas shared by several safe fetches, and by two Node processes, through one real redis-server.
import { fork, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { redisQuotaStore, type AuditEvent, type QuotaRule, type QuotaStore, type SafeFetch } from '../src/index.js'
import { CONCURRENT_RETRY_MS } from '../src/quota/types.js'
import { closeAllFetches, ctx, errorOf, ok, tableResolver, testFetch } from './helpers/fetch.js'
import { hasRedis, testRedis } from './helpers/redis-server.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'

/** The child's next IPC message; rejects if it exits first. */
function nextMessage(child: ChildProcess): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const exited = (code: number | null) => reject(new Error(`the host process exited (${code}) before it answered`))
    child.once('exit', exited)
    child.once('message', (message) => {
      child.off('exit', exited)
      resolve(message)
    })
  })
}

interface Host {
  readonly fetch: SafeFetch
  readonly events: AuditEvent[]
}

describe.skipIf(!hasRedis)('quotas shared through Redis', () => {
  let redis: { url: string; close(): Promise<void> }
  let server: TestServer
  const stores: QuotaStore[] = []
  /** Requests the upstream holds until the test answers them. */
  const held: Array<() => void> = []

  beforeAll(async () => {
    redis = await testRedis()
    server = await startServer((req, res) => {
      if (req.url === '/hold') held.push(() => res.end('late'))
      else if (req.url === '/reset') req.socket.destroy()
      else if (req.url === '/500') res.writeHead(500).end('broken')
      else res.end('ok')
    })
  })
  afterAll(async () => {
    await closeAllFetches()
    await Promise.all(stores.map((store) => store.close()))
    await closeAllServers()
    await redis?.close()
  })

  /**
   * `count` hosts (a safe fetch and a Redis store each) on one Redis and one prefix, with the same
   * quotas. A generous timeoutMs: these tests are about sharing (the outage tests are about timing).
   */
  function fleet(quotas: QuotaRule[], count = 2): Host[] {
    const prefix = `test:${randomUUID()}:`
    return Array.from({ length: count }, () => {
      const quotaStore = redisQuotaStore({ url: redis.url, prefix, timeoutMs: 5000 })
      stores.push(quotaStore)
      const events: AuditEvent[] = []
      const resolver = tableResolver({ 'api.test': ['127.0.0.1'] })
      const fetch = testFetch({ rules: { host: 'api.test', httpsOnly: false, port: server.port }, resolver, quotas, quotaStore, onRequest: (event) => events.push(event) })
      return { fetch, events }
    })
  }
  const url = (path = '/') => JSON.stringify({ url: `http://api.test:${server.port}${path}` })
  /**
   * Resolves once Redis has run every release `host` sent: a request of another capsule through it
   * has its acquire run after them (one connection, in order). Without it, the other host's next
   * acquire, on its own connection, could reach Redis first.
   */
  const releasesRun = async (host: Host) => {
    ok(await host.fetch.request(url(), ctx(`barrier-${randomUUID()}`)))
  }
  const untilHeld = async (n: number) => {
    while (held.length < n) await new Promise((resolve) => setImmediate(resolve))
  }

  it('two safe fetches share one requests quota: limit 10, 20 requests at once across both, exactly 10 served', async () => {
    const hosts = fleet([{ key: 'capsule', id: 'fleet', requests: { limit: 10, windowMs: 60_000 } }])
    const before = server.requests.length
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => hosts[i % 2]!.fetch.request(url(), ctx('shared'))))
    expect(replies.filter((reply) => !('error' in reply))).toHaveLength(10)
    expect(replies.map(errorOf).filter(Boolean)).toEqual(Array(10).fill({ code: 'rate_limited', message: expect.stringMatching(/^quota "fleet" is used up \(requests: 10 per 60000 ms\); retry after \d+ ms$/), retryAfterMs: expect.any(Number) }))
    expect(server.requests.length - before).toBe(10)
    const refusals = hosts.flatMap((host) => host.events).filter((event) => !event.allowed)
    expect(refusals).toHaveLength(10)
    for (const event of refusals) expect(event).toMatchObject({ decidedBy: 'quota:fleet', reason: 'over quota', code: 'rate_limited' })
  })

  it('two safe fetches share one concurrent quota: one held by the first refuses the second, and its end frees the slot for it', async () => {
    const [first, second] = fleet([{ key: 'capsule', concurrent: 1 }])
    const pending = first!.fetch.request(url('/hold'), ctx('c'))
    await untilHeld(1)
    expect(errorOf(await second!.fetch.request(url(), ctx('c')))).toMatchObject({ code: 'rate_limited', retryAfterMs: CONCURRENT_RETRY_MS })
    held.shift()!()
    expect(ok(await pending).body).toBe('late')
    await releasesRun(first!)
    ok(await second!.fetch.request(url(), ctx('c')))
  })

  it('a stream (no total timeout by default) holds a concurrent slot shared by both until it is closed', async () => {
    const [first, second] = fleet([{ key: 'capsule', concurrent: 1 }])
    const stream = await first!.fetch.stream(url('/'), ctx('s'))
    if ('error' in stream) throw new Error(stream.error.message)
    expect(errorOf(await second!.fetch.request(url(), ctx('s')))).toMatchObject({ code: 'rate_limited', retryAfterMs: CONCURRENT_RETRY_MS })
    stream.close()
    await releasesRun(first!)
    ok(await second!.fetch.request(url(), ctx('s')))
  })

  it.each([
    ['the upstream resets the connection', '/reset', 'network'],
    ['the upstream answers 500', '/500', undefined],
    ['the rules refuse the request', 'denied', 'denied'],
  ])('a concurrent slot freed when %s is free for the other safe fetch', async (_name, path, code) => {
    const [first, second] = fleet([{ key: 'capsule', concurrent: 1 }])
    const input = path === 'denied' ? JSON.stringify({ url: `http://nowhere.test:${server.port}/` }) : url(path)
    const reply = await first!.fetch.request(input, ctx('f'))
    expect(errorOf(reply)?.code).toBe(code)
    await releasesRun(first!)
    ok(await second!.fetch.request(url(), ctx('f')))
    ok(await first!.fetch.request(url(), ctx('f')))
  })

  it('the window rolls over for both: after the retryAfterMs the refusal reported, the other safe fetch is served', async () => {
    const [first, second] = fleet([{ key: 'capsule', requests: { limit: 2, windowMs: 400 } }])
    ok(await first!.fetch.request(url(), ctx('w')))
    ok(await second!.fetch.request(url(), ctx('w')))
    const refused = errorOf(await first!.fetch.request(url(), ctx('w')))
    expect(refused).toMatchObject({ code: 'rate_limited' })
    await new Promise((resolve) => setTimeout(resolve, refused!.retryAfterMs))
    ok(await second!.fetch.request(url(), ctx('w')))
    ok(await first!.fetch.request(url(), ctx('w')))
    expect(errorOf(await second!.fetch.request(url(), ctx('w')))?.code).toBe('rate_limited')
  })

  it('response bytes received by one safe fetch are charged against the other', async () => {
    const [first, second] = fleet([{ key: 'capsule', responseBytes: { limit: 2, windowMs: 60_000 } }])
    ok(await first!.fetch.request(url(), ctx('b')))
    await releasesRun(first!)
    expect(errorOf(await second!.fetch.request(url(), ctx('b')))).toMatchObject({ code: 'rate_limited', message: expect.stringContaining('(response bytes: 2 per 60000 ms)') })
  })

  it('two Node processes share one quota exactly: limit 10, each fires 10 at once, 10 served and 10 rate_limited in all', async () => {
    const prefix = `test:${randomUUID()}:`
    const fixture = new URL('./fixtures/quota-process.mjs', import.meta.url)
    const children = [0, 1].map(() => fork(fixture, [redis.url, prefix, String(server.port), '10'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
    expect(await Promise.all(children.map(nextMessage))).toEqual(['ready', 'ready'])
    const results = children.map((child) => nextMessage(child) as Promise<{ served: number; refusals: unknown[] }>)
    const before = server.requests.length
    for (const child of children) child.send('go')
    const counts = await Promise.all(results)
    await Promise.all(children.map((child) => (child.exitCode === null ? once(child, 'exit') : undefined)))
    expect(counts.reduce((sum, result) => sum + result.served, 0)).toBe(10)
    const overQuota = { code: 'rate_limited', message: expect.stringMatching(/^quota "fleet" is used up \(requests: 10 per 60000 ms\)/), retryAfterMs: expect.any(Number) }
    expect(counts.flatMap((result) => result.refusals)).toEqual(Array(10).fill(overQuota))
    expect(server.requests.length - before).toBe(10)
  })
})
