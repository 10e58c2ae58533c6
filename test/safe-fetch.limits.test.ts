// Integration: body caps, each timeout phase, resets, cancellation and per-capsule concurrency.
import { createServer, type Server, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { afterAll, describe, expect, test } from 'vitest'
import type { SafeFetchOptions } from '../src/index.js'
import { closeAllFetches, ctx, errorOf, ok, testFetch } from './helpers/fetch.js'
import { closeAllServers, startServer, type Handler } from './helpers/servers.js'

const tcpServers: Server[] = []
const tcpSockets = new Set<Socket>()
afterAll(async () => {
  await closeAllFetches()
  await closeAllServers()
  for (const socket of tcpSockets) socket.destroy()
  await Promise.all(tcpServers.map((s) => new Promise((resolve) => s.close(resolve))))
})


async function serve(handler: Handler, options: Omit<SafeFetchOptions, 'rules'> = {}) {
  const server = await startServer(handler)
  const fetch = testFetch({ rules: { host: 'api.test', httpsOnly: false, port: server.port }, ...options })
  return { server, fetch, url: `http://api.test:${server.port}` }
}

const CAP = 1000

test.each([
  ['declared length at the cap', CAP, true, true],
  ['declared length one over the cap', CAP + 1, true, false],
  ['chunked body at the cap', CAP, false, true],
  ['chunked body one over the cap', CAP + 1, false, false],
])('%s', async (_name, size, declared, accepted) => {
  const { fetch, url } = await serve((_req, res) => {
    if (declared) res.setHeader('content-length', size)
    res.write(Buffer.alloc(size - 1, 97))
    res.end(Buffer.alloc(1, 98))
  })
  const reply = await fetch.request({ url: `${url}/body`, options: { maxResponseBytes: CAP } }, ctx())
  if (accepted) expect(ok(reply).body).toHaveLength(size)
  else expect(errorOf(reply)?.code).toBe('too_large')
})

test('the host cap applies when the capsule asks for more', async () => {
  const { fetch, url } = await serve((_req, res) => res.end(Buffer.alloc(CAP + 1, 97)), { limits: { maxResponseBytes: CAP } })
  expect(errorOf(await fetch.request({ url, options: { maxResponseBytes: 10 * CAP } }, ctx()))?.code).toBe('too_large')
})

test('a declared length over the cap is refused before the body is read', async () => {
  let written = false
  const { fetch, url } = await serve((_req, res) => {
    res.writeHead(200, { 'content-length': CAP * 100 })
    res.flushHeaders()
    setTimeout(() => {
      written = res.write(Buffer.alloc(CAP, 97))
      res.end()
    }, 100)
  })
  const reply = await fetch.request({ url, options: { maxResponseBytes: CAP } }, ctx())
  expect(errorOf(reply)?.code).toBe('too_large')
  expect(written).toBe(false)
})

test('a stream whose declared length is over its cap is refused at start with too_large', async () => {
  const { fetch, url } = await serve((_req, res) => res.end(Buffer.alloc(CAP * 5, 97)))
  expect(errorOf(await fetch.stream({ url, options: { maxResponseBytes: CAP } }, ctx()))?.code).toBe('too_large')
})

test('a chunked stream over its cap fails the read with too_large', async () => {
  const { fetch, url } = await serve((_req, res) => {
    res.write(Buffer.alloc(CAP * 5, 97))
    res.end()
  })
  const stream = await fetch.stream({ url, options: { maxResponseBytes: CAP } }, ctx())
  if ('error' in stream) throw new Error('start failed')
  await expect((async () => {
    while ((await stream.read()) !== null);
  })()).rejects.toMatchObject({ code: 'too_large' })
})

/** A TCP server that accepts and never speaks: a TLS handshake against it stalls. */
async function silentTcpServer(): Promise<number> {
  const server = createServer((socket) => {
    tcpSockets.add(socket)
    socket.on('error', () => undefined)
  })
  tcpServers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

test('connect: a TLS handshake that stalls is timeout/connect', async () => {
  const port = await silentTcpServer()
  const fetch = testFetch({ rules: { host: 'api.test', port } })
  const reply = await fetch.request({ url: `https://api.test:${port}/`, options: { connectTimeoutMs: 150 } }, ctx())
  expect(errorOf(reply)).toMatchObject({ code: 'timeout', phase: 'connect' })
})

test('first byte: a server that never answers is timeout/first_byte', async () => {
  const { fetch, url } = await serve(() => undefined)
  const reply = await fetch.request({ url, options: { firstByteTimeoutMs: 150 } }, ctx())
  expect(errorOf(reply)).toMatchObject({ code: 'timeout', phase: 'first_byte' })
})

test('idle: a body that stops mid-way is timeout/idle, for buffered requests and streams', async () => {
  const { fetch, url } = await serve((_req, res) => {
    res.writeHead(200, { 'content-length': 100 })
    res.write('first part')
  })
  expect(errorOf(await fetch.request({ url, options: { idleTimeoutMs: 150 } }, ctx()))).toMatchObject({ code: 'timeout', phase: 'idle' })
  const stream = await fetch.stream({ url, options: { idleTimeoutMs: 150 } }, ctx())
  if ('error' in stream) throw new Error('start failed')
  expect(Buffer.from((await stream.read())!).toString()).toBe('first part')
  await expect(stream.read()).rejects.toMatchObject({ code: 'timeout', phase: 'idle' })
})

test('total: a body that drips forever is timeout/total even though no single wait is long', async () => {
  const { fetch, url } = await serve((_req, res) => {
    res.writeHead(200)
    const timer = setInterval(() => res.write('.'), 20)
    res.on('close', () => clearInterval(timer))
  })
  const started = performance.now()
  const reply = await fetch.request({ url, options: { timeoutMs: 300, idleTimeoutMs: 5000 } }, ctx())
  expect(errorOf(reply)).toMatchObject({ code: 'timeout', phase: 'total' })
  expect(performance.now() - started).toBeLessThan(5000)
})

test('the host total timeout applies when the capsule asks for a longer one', async () => {
  const { fetch, url } = await serve(() => undefined, { limits: { timeoutMs: 200 } })
  expect(errorOf(await fetch.request({ url, options: { timeoutMs: 60_000 } }, ctx()))).toMatchObject({ code: 'timeout', phase: 'total' })
})

test('a connection reset mid-body is network, buffered and streamed', async () => {
  const { fetch, url } = await serve((_req, res) => {
    res.writeHead(200, { 'content-length': 1000 })
    res.write('partial')
    setTimeout(() => res.socket?.destroy(), 20)
  })
  expect(errorOf(await fetch.request({ url }, ctx()))?.code).toBe('network')
  const stream = await fetch.stream({ url }, ctx())
  if ('error' in stream) throw new Error('start failed')
  await expect((async () => {
    while ((await stream.read()) !== null);
  })()).rejects.toMatchObject({ code: 'network' })
})

test('aborting the context signal is cancelled, and the upstream sees the connection close', async () => {
  let closed!: () => void
  const upstreamClosed = new Promise<void>((resolve) => (closed = resolve))
  const { fetch, url } = await serve((req) => {
    req.socket.on('close', closed)
  })
  const controller = new AbortController()
  setTimeout(() => controller.abort(), 100)
  expect(errorOf(await fetch.request({ url }, ctx('c', controller.signal)))?.code).toBe('cancelled')
  await upstreamClosed
})

test('an already-aborted signal is cancelled without any connection', async () => {
  const { fetch, url, server } = await serve((_req, res) => res.end())
  expect(errorOf(await fetch.request({ url }, ctx('c', AbortSignal.abort())))?.code).toBe('cancelled')
  expect(server.connections).toBe(0)
})

/** An upstream that sends a head and one chunk, then holds the body open; says when its socket closes. */
async function halfSentBody() {
  let closed!: () => void
  const upstreamClosed = new Promise<void>((resolve) => (closed = resolve))
  const served = await serve((req, res) => {
    req.socket.on('close', closed)
    res.writeHead(200)
    res.write('chunk')
  })
  return { ...served, upstreamClosed }
}

test('closing a stream early releases its socket', async () => {
  const { fetch, url, upstreamClosed } = await halfSentBody()
  const stream = await fetch.stream({ url }, ctx())
  if ('error' in stream) throw new Error('start failed')
  await stream.read()
  stream.close()
  stream.close() // idempotent
  await upstreamClosed
  await expect(stream.read()).rejects.toMatchObject({ code: 'cancelled' })
})

test('releasing a capsule aborts its open stream', async () => {
  const { fetch, url, upstreamClosed } = await halfSentBody()
  const stream = await fetch.stream({ url }, ctx('leaving'))
  if ('error' in stream) throw new Error('start failed')
  await stream.read()
  await fetch.releaseCapsule('leaving')
  await upstreamClosed
  await expect(stream.read()).rejects.toMatchObject({ code: 'cancelled' })
})

test('releasing a capsule fails its buffered request in flight with cancelled', async () => {
  const { fetch, url } = await halfSentBody()
  const pending = fetch.request({ url }, ctx('leaving-too'))
  await new Promise((resolve) => setTimeout(resolve, 50))
  await fetch.releaseCapsule('leaving-too')
  expect(errorOf(await pending)?.code).toBe('cancelled')
})

test('buffered requests per capsule are limited to maxConcurrentRequests; the rest wait', async () => {
  let inFlight = 0
  let most = 0
  const { fetch, url } = await serve(
    (_req, res) => {
      inFlight++
      most = Math.max(most, inFlight)
      setTimeout(() => {
        inFlight--
        res.end('ok')
      }, 50)
    },
    { limits: { maxConcurrentRequests: 2 } },
  )
  const replies = await Promise.all(Array.from({ length: 6 }, () => fetch.request({ url }, ctx('busy'))))
  expect(replies.every((r) => ok(r).status === 200)).toBe(true)
  expect(most).toBe(2)
})

test('invalid host limits are refused at creation with the field named', () => {
  expect(() => testFetch({ limits: { timeoutMs: 0 } })).toThrow(/timeoutMs/)
  expect(() => testFetch({ limits: { maxOpenStreams: 1.5 } })).toThrow(/maxOpenStreams/)
  expect(() => testFetch({ limits: { colour: 1 } as never })).toThrow(/colour/)
  expect(() => testFetch({ maxRedirects: -1 })).toThrow(/maxRedirects/)
})

describe('queued and in-flight work ends when it should', () => {
  test('releasing a capsule settles its queued requests with cancelled too', async () => {
    const { fetch, url } = await serve(() => undefined, { limits: { maxConcurrentRequests: 1 } })
    const running = fetch.request({ url }, ctx('queue'))
    const queued = fetch.request({ url }, ctx('queue'))
    await new Promise((resolve) => setTimeout(resolve, 50))
    await fetch.releaseCapsule('queue')
    expect(errorOf(await running)?.code).toBe('cancelled')
    expect(errorOf(await queued)?.code).toBe('cancelled')
  })

  test('a queued request keeps its own total timeout and its own signal', async () => {
    const { fetch, url } = await serve(() => undefined, { limits: { maxConcurrentRequests: 1, timeoutMs: 5000 } })
    const blocker = fetch.request({ url, options: { timeoutMs: 1500 } }, ctx('q2'))
    const started = performance.now()
    expect(errorOf(await fetch.request({ url, options: { timeoutMs: 100 } }, ctx('q2')))).toMatchObject({ code: 'timeout', phase: 'total' })
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 50)
    expect(errorOf(await fetch.request({ url }, ctx('q2', controller.signal)))?.code).toBe('cancelled')
    expect(performance.now() - started).toBeLessThan(1000)
    expect(errorOf(await blocker)?.code).toBe('timeout')
  })

  test('a release while the name is being resolved is cancelled, for requests and streams', async () => {
    const server = await startServer((_req, res) => res.end())
    const slowResolver = () => new Promise<string[]>((resolve) => setTimeout(() => resolve(['127.0.0.1']), 300))
    const fetch = testFetch({ rules: { host: 'api.test', httpsOnly: false, port: server.port }, resolver: slowResolver })
    const url = `http://api.test:${server.port}/`
    const request = fetch.request({ url }, ctx('resolving'))
    const stream = fetch.stream({ url }, ctx('resolving'))
    await new Promise((resolve) => setTimeout(resolve, 50))
    await fetch.releaseCapsule('resolving')
    expect(errorOf(await request)?.code).toBe('cancelled')
    expect(errorOf(await stream)?.code).toBe('cancelled')
    expect(server.connections).toBe(0)
  })

  test('resolution and connecting share one connect budget', async () => {
    const port = await silentTcpServer()
    const fetch = testFetch({
      rules: { host: 'api.test', port },
      resolver: () => new Promise((resolve) => setTimeout(() => resolve(['127.0.0.1']), 250)),
    })
    const started = performance.now()
    const reply = await fetch.request({ url: `https://api.test:${port}/`, options: { connectTimeoutMs: 400 } }, ctx())
    expect(errorOf(reply)).toMatchObject({ code: 'timeout', phase: 'connect' })
    expect(performance.now() - started).toBeLessThan(650)
  })

  test.each([['without', undefined], ['with', (_c: unknown, next: () => Promise<unknown>) => next()]])('a slow gate does not eat the connect budget, %s middleware', async (_name, middleware) => {
    const { url, fetch } = await serve((_req, res) => res.end('ok'), {
      limits: { connectTimeoutMs: 100 },
      gates: [{ name: 'slow', check: () => new Promise((resolve) => setTimeout(() => resolve({ allow: true }), 150)) }],
      ...(middleware ? { middleware: middleware as never } : {}),
    })
    expect(ok(await fetch.request({ url }, ctx())).body).toBe('ok')
  })
})

// Only HEAD: undici itself refuses a 204 or 304 whose content-length is not 0 (length mismatch).
test.each([['HEAD', 200]])('%s answered %i with a large content-length is not too_large (no body)', async (method, status) => {
  const { fetch, url } = await serve((_req, res) => {
    res.writeHead(status, { 'content-length': 50_000_000 })
    res.end()
  })
  const reply = ok(await fetch.request({ url, method, options: { maxResponseBytes: CAP } }, ctx()))
  expect(reply.status).toBe(status)
  expect(reply.body).toBe('')
})

test('the stream table is the session\'s: maxOpenStreams enforced by stream() itself, handles never reused, a closed stream frees its slot', async () => {
  const { fetch, server, url } = await serve((_req, res) => void res.writeHead(200).write('x'), { limits: { maxOpenStreams: 2 } })
  const session = fetch.registerCapsule('streamer')
  const first = await session.stream({ url: `${url}/1` })
  const second = await session.stream({ url: `${url}/2` })
  if ('error' in first || 'error' in second) throw new Error('start failed')
  expect([first.handle, second.handle]).toEqual(['1', '2'])
  expect(session.openStreams).toBe(2)
  expect(session.openStream('1')).toBe(first)
  const before = server.requests.length
  expect(await session.stream({ url: `${url}/3` })).toEqual({ error: { code: 'stream_limit', message: 'this capsule already has 2 open streams; close one first' } })
  // Refused before any network I/O.
  expect(server.requests.length).toBe(before)
  first.close()
  expect(session.openStreams).toBe(1)
  expect(session.openStream('1')).toBeUndefined()
  const third = await session.stream({ url: `${url}/4` })
  if ('error' in third) throw new Error('start failed')
  expect(third.handle).toBe('3')
  third.close()
  second.close()
  expect(session.openStreams).toBe(0)
  await session.release()
})
