// The per-capsule session: release, tombstones, ad hoc sessions, queued work past its deadline, one read at a time.
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { CapsuleHostError, type AuditEvent, type SafeFetchOptions } from '../src/index.js'
import { closeAllFetches, ctx, ok, testFetch } from './helpers/fetch.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'

afterAll(async () => {
  await closeAllFetches()
  await closeAllServers()
})

let server: TestServer
let release: (() => void) | undefined
beforeAll(async () => {
  server = await startServer((req, res) => {
    if (req.url === '/held') return void (release = () => res.end('late'))
    if (req.url === '/drip') {
      res.writeHead(200)
      return void res.write('first')
    }
    res.end('fine')
  })
})

const base = () => `http://api.test:${server.port}`
function withEvents(options: SafeFetchOptions = {}) {
  const events: AuditEvent[] = []
  return { fetch: testFetch({ rules: { host: 'api.test', httpsOnly: false, port: server.port }, ...options, onRequest: (e) => events.push(e) }), events }
}

describe('a released capsule id', () => {
  test('requests and streams under it are cancelled, never served without its manifest restriction', async () => {
    const { fetch, events } = withEvents()
    const session = fetch.registerCapsule('leaving', { http: ['other.test'] })
    expect(await session.request({ url: `${base()}/x` })).toMatchObject({ error: { code: 'denied' } })
    await session.release()
    const cancelled = { error: { code: 'cancelled', message: 'the capsule was released' } }
    expect(await fetch.request({ url: `${base()}/x` }, ctx('leaving'))).toEqual(cancelled)
    expect(await fetch.stream({ url: `${base()}/x` }, ctx('leaving'))).toEqual(cancelled)
    expect(events.slice(1).map((e) => [e.kind, e.allowed, e.decidedBy, e.code])).toEqual([
      ['request', false, 'pending', 'cancelled'],
      ['stream', false, 'pending', 'cancelled'],
    ])
    // The id can be registered again, and then it is served under its new restriction.
    const again = fetch.registerCapsule('leaving')
    expect(ok(await again.request({ url: `${base()}/x` })).body).toBe('fine')
  })

  test('release() twice, or again from a listener of the cancelled stream it records: one release, no hang', async () => {
    const { fetch } = withEvents({ onRequest: () => void fetch.releaseCapsule('twice') })
    const session = fetch.registerCapsule('twice')
    const stream = await session.stream({ url: `${base()}/drip` })
    expect('error' in stream).toBe(false)
    const first = session.release()
    expect(session.release()).toBe(first)
    await first
    expect(session.openStreams).toBe(0)
  })
})

test('an ad hoc session is made per id, and idle ones past 256 are released (their requests still answer)', async () => {
  const { fetch } = withEvents()
  for (let i = 0; i < 300; i++) ok(await fetch.request({ url: `${base()}/x` }, ctx(`ad-hoc-${i}`)))
  // The oldest ad hoc id gets a fresh session on its next request.
  expect(ok(await fetch.request({ url: `${base()}/x` }, ctx('ad-hoc-0'))).body).toBe('fine')
})

test('a buffered request whose total time ran out while queued never starts (its gate is not asked)', async () => {
  let checks = 0
  const { fetch } = withEvents({
    limits: { maxConcurrentRequests: 1 },
    gates: [{ name: 'count', check: () => (checks++, { allow: true }) }],
  })
  const holding = fetch.request({ url: `${base()}/held` }, ctx('queue'))
  await expect.poll(() => checks).toBe(1)
  const queued = await fetch.request({ url: `${base()}/x`, options: { timeoutMs: 30 } }, ctx('queue'))
  expect(queued).toMatchObject({ error: { code: 'timeout', phase: 'total' } })
  release!()
  ok(await holding)
  ok(await fetch.request({ url: `${base()}/x` }, ctx('queue')))
  // The held request, then the one after: the timed-out one was never admitted.
  expect(checks).toBe(2)
})

test('a gate that throws its own cancelled error is a gate failure, with onError', async () => {
  const thrown: unknown[] = []
  const { fetch, events } = withEvents({
    gates: [{ name: 'quota', check: () => { throw new CapsuleHostError('cancelled', 'quota client was cancelled') } }],
    onError: (error) => thrown.push(error),
  })
  const reply = await fetch.request({ url: `${base()}/x` }, ctx())
  expect(reply).toEqual({ error: { code: 'denied', message: `GET ${base()}/x is not allowed: a gate failed` } })
  expect(events).toEqual([expect.objectContaining({ allowed: false, decidedBy: 'gate:quota', reason: 'a gate failed' })])
  expect(thrown).toHaveLength(1)
})

test('two reads of one stream at once: the second is refused, the first still answers', async () => {
  const { fetch } = withEvents()
  const stream = await fetch.stream({ url: `${base()}/drip` }, ctx())
  if ('error' in stream) throw new Error(stream.error.message)
  expect(Buffer.from((await stream.read())!).toString()).toBe('first')
  const first = stream.read()
  await expect(stream.read()).rejects.toThrow('a read of this body is already pending')
  stream.close()
  await expect(first).rejects.toMatchObject({ code: 'cancelled' })
})
