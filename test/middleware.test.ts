// Integration: middleware at three levels against a real loopback upstream: auth, rewrites, synthetic and JSON answers.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { respond, type Middleware, type RequestEvent, type SafeFetchOptions } from '../src/index.js'
import { closeAllFetches, ctx, errorOf, ok, tableResolver, testFetch } from './helpers/fetch.js'
import { closeAllServers, readBody, startServer, type TestServer } from './helpers/servers.js'

afterAll(async () => {
  await closeAllFetches()
  await closeAllServers()
})

const SECRET = 'sk-live-THE-SECRET-TOKEN-4242'

/** Records what arrived; answers JSON without echoing any header. */
async function upstream(req: IncomingMessage, res: ServerResponse) {
  const body = await readBody(req)
  const url = new URL(req.url!, 'http://x')
  if (url.pathname === '/redirect-away') {
    res.writeHead(302, { location: `http://other.test:${url.searchParams.get('port')}/landing` })
    return void res.end()
  }
  res.setHeader('content-type', 'application/json')
  res.setHeader('x-upstream', 'yes')
  res.end(JSON.stringify({ path: req.url, method: req.method, bodyLength: body.length, items: [1, 2, 3] }))
}

let server: TestServer
let base: string
beforeAll(async () => {
  server = await startServer(upstream)
  base = `http://api.test:${server.port}`
})

function fetchWith(options: SafeFetchOptions) {
  const events: RequestEvent[] = []
  const fetch = testFetch({ ...options, onRequest: (e) => events.push(e) })
  return { fetch, events }
}

/** Every byte the capsule could see, and every event: none may contain the secret. */
function expectNoSecret(...captured: unknown[]) {
  expect(JSON.stringify(captured)).not.toContain(SECRET)
}

const authorization = (req: IncomingMessage) => req.headers.authorization

describe('everyday patterns', () => {
  test('auth injected at origin level reaches the upstream and never the capsule or the events', async () => {
    const { fetch, events } = fetchWith({
      rules: {
        host: 'api.test',
        httpsOnly: false,
        port: server.port,
        middleware: (c, next) => {
          c.req.header('authorization', `Bearer ${SECRET}`)
          return next()
        },
      },
    })
    const before = server.requests.length
    const reply = ok(await fetch.request({ url: `${base}/v1/me?x=1` }, ctx()))
    const stream = await fetch.stream({ url: `${base}/v1/stream` }, ctx())
    if ('error' in stream) throw new Error(stream.error.message)
    const chunks: Uint8Array[] = []
    for await (const chunk of stream) chunks.push(chunk)
    expect(server.requests.slice(before).map(authorization)).toEqual([`Bearer ${SECRET}`, `Bearer ${SECRET}`])
    expect(reply.status).toBe(200)
    expectNoSecret(reply, Buffer.concat(chunks).toString(), stream.headers, stream.rawHeaders, events)
  })

  test('a route middleware returning await res.json() gives the capsule a parsed body', async () => {
    const { fetch } = fetchWith({
      rules: {
        host: 'api.test',
        httpsOnly: false,
        port: server.port,
        routes: [{ path: '/items', middleware: async (_c, next) => ((await (await next()).json()) as { items: number[] }).items }],
      },
    })
    const reply = ok(await fetch.request({ url: `${base}/items` }, ctx()))
    expect(reply).toMatchObject({ status: 200, bodyEncoding: 'json', body: [1, 2, 3] })
    expect(reply.headers['content-type']).toBe('application/json')
    expect(reply.headers['x-upstream']).toBe('yes')
  })

  test('a DELETE answered synthetically with 202 sends nothing upstream', async () => {
    const counting = await startServer(upstream)
    const { fetch, events } = fetchWith({
      rules: {
        host: 'api.test',
        httpsOnly: false,
        port: counting.port,
        routes: [
          { path: '/items/:id', methods: 'DELETE', middleware: (c) => respond({ status: 202, headers: { 'x-queued': c.req.params.id! }, body: 'queued' }) },
          { path: '/**' },
        ],
      },
    })
    const reply = ok(await fetch.request({ url: `http://api.test:${counting.port}/items/a%20b`, method: 'DELETE' }, ctx()))
    expect(reply).toMatchObject({ status: 202, body: 'queued', bodyEncoding: 'text', headers: { 'x-queued': 'a b' } })
    expect(counting.requests.length).toBe(0)
    expect(counting.connections).toBe(0)
    expect(events).toEqual([expect.objectContaining({ allowed: true, status: 202 })])
  })

  test('a middleware whose next() runs once the caller aborted: cancelled, and nothing reaches the upstream', async () => {
    const counting = await startServer(upstream)
    const caller = new AbortController()
    const { fetch, events } = fetchWith({
      rules: {
        host: 'api.test',
        httpsOnly: false,
        port: counting.port,
        middleware: async (_c, next) => {
          await Promise.resolve()
          caller.abort()
          return next()
        },
      },
    })
    const reply = await fetch.request({ url: `http://api.test:${counting.port}/items` }, ctx('test-capsule', caller.signal))
    expect(errorOf(reply)?.code).toBe('cancelled')
    expect(counting.requests.length).toBe(0)
    expect(counting.connections).toBe(0)
    expect(events).toEqual([expect.objectContaining({ code: 'cancelled' })])
  })

  test('a logging middleware sees the status and the duration', async () => {
    const seen: Array<{ status: number; elapsedMs: number; method: string; url: string }> = []
    const { fetch } = fetchWith({
      middleware: async (c, next) => {
        const res = await next()
        seen.push({ status: res.status, elapsedMs: res.elapsedMs, method: c.req.method, url: c.req.url })
        return res
      },
      rules: { host: 'api.test', httpsOnly: false, port: server.port },
    })
    ok(await fetch.request({ url: `${base}/log`, method: 'post', body: 'x' }, ctx()))
    expect(seen).toEqual([{ status: 200, elapsedMs: expect.any(Number), method: 'POST', url: `${base}/log` }])
    expect(seen[0]!.elapsedMs).toBeGreaterThanOrEqual(0)
  })
})

describe('the chain', () => {
  test('runs global, then origin, then route, each as one (ctx, next) chain', async () => {
    const order: string[] = []
    const step = (name: string): Middleware => async (_c, next) => {
      order.push(`${name} in`)
      const res = await next()
      order.push(`${name} out`)
      return res
    }
    const { fetch } = fetchWith({
      middleware: [step('global 1'), step('global 2')],
      rules: { host: 'api.test', httpsOnly: false, port: server.port, middleware: step('origin'), routes: [{ path: '/**', middleware: [step('route')] }] },
    })
    ok(await fetch.request({ url: `${base}/order` }, ctx()))
    expect(order).toEqual(['global 1 in', 'global 2 in', 'origin in', 'route in', 'route out', 'origin out', 'global 2 out', 'global 1 out'])
  })

  test('ctx.req: params decoded, raw frozen, headers, body and capsule id', async () => {
    let seen: Record<string, unknown> = {}
    const { fetch } = fetchWith({
      rules: {
        host: 'api.test',
        httpsOnly: false,
        port: server.port,
        routes: [{
          path: '/users/:name/**',
          middleware: (c, next) => {
            seen = { params: c.req.params, hop: c.req.hop, capsuleId: c.req.capsuleId, frozen: Object.isFrozen(c.req.raw), rawUrl: c.req.raw.url, accept: c.req.headers.accept, body: Buffer.from(c.req.body!).toString() }
            c.req.setBody('replaced body!')
            c.req.header('x-added', '1')
            return next()
          },
        }],
      },
    })
    const reply = ok(await fetch.request({ url: `${base}/users/J%C3%BCrgen/x`, method: 'PUT', body: 'original', headers: { Accept: 'text/plain' } }, ctx('cap-9')))
    expect(seen).toEqual({ params: { name: 'Jürgen' }, hop: 0, capsuleId: 'cap-9', frozen: true, rawUrl: `${base}/users/J%C3%BCrgen/x`, accept: 'text/plain', body: 'original' })
    expect(JSON.parse(reply.body as string)).toMatchObject({ bodyLength: 'replaced body!'.length })
    expect(server.requests.at(-1)!.headers['x-added']).toBe('1')
  })

  test.each<[string, Middleware]>([
    ['next() twice', async (_c, next) => {
      await next()
      return next()
    }],
    ['a throw', () => {
      throw new Error('boom')
    }],
    ['a value without next()', () => ({ some: 'value' })],
    ['nothing without next()', () => undefined],
    ['a host-only header', (c, next) => {
      c.req.header('host', 'evil.test')
      return next()
    }],
    ['a header value with CR LF', (c, next) => {
      c.req.headers['x-bad'] = 'a\r\nb'
      return next()
    }],
    ['an invalid respond() status', () => respond({ status: 42 })],
  ])('a middleware bug (%s) is an internal error for the capsule, with no detail', async (_name, middleware) => {
    const { fetch } = fetchWith({ middleware, rules: { host: 'api.test', httpsOnly: false, port: server.port } })
    expect(errorOf(await fetch.request({ url: `${base}/bug` }, ctx()))).toEqual({ code: 'internal', message: 'internal error in host middleware' })
  })

  test('a plain { status } object is a response before and after next(); an object with other keys after next() is a JSON body', async () => {
    const before = server.requests.length
    const synthetic = fetchWith({ middleware: () => ({ status: 204 }), rules: { host: 'api.test', httpsOnly: false, port: server.port } })
    expect(ok(await synthetic.fetch.request({ url: `${base}/s` }, ctx())).status).toBe(204)
    expect(server.requests.length).toBe(before)
    const after = fetchWith({ middleware: async (_c, next) => (await next(), { status: 204 }), rules: { host: 'api.test', httpsOnly: false, port: server.port } })
    expect(ok(await after.fetch.request({ url: `${base}/s` }, ctx()))).toMatchObject({ status: 204, bodyEncoding: 'text', body: '' })
    const value = fetchWith({ middleware: async (_c, next) => (await next(), { status: 204, note: 1 }), rules: { host: 'api.test', httpsOnly: false, port: server.port } })
    expect(ok(await value.fetch.request({ url: `${base}/s` }, ctx()))).toMatchObject({ status: 200, bodyEncoding: 'json', body: { status: 204, note: 1 } })
  })

  test('a middleware may refuse with its own code', async () => {
    const { CapsuleHostError } = await import('../src/index.js')
    const { fetch } = fetchWith({
      middleware: () => {
        throw new CapsuleHostError('denied', 'quota exceeded for this capsule')
      },
      rules: { host: 'api.test', httpsOnly: false, port: server.port },
    })
    expect(errorOf(await fetch.request({ url: `${base}/q` }, ctx()))).toEqual({ code: 'denied', message: 'quota exceeded for this capsule' })
  })
})

describe('setUrl: rewritten URLs are judged again', () => {
  const rewriting = (target: (port: number) => string, extraRules: SafeFetchOptions['rules'] = []) =>
    fetchWith({
      resolver: tableResolver({ 'api.test': ['127.0.0.1'], 'other.test': ['127.0.0.1'], 'internal.test': ['10.0.0.9'] }),
      rules: [
        { host: 'api.test', httpsOnly: false, port: server.port, middleware: (c, next) => (c.req.setUrl(target(server.port)), next()) },
        ...(Array.isArray(extraRules) ? extraRules : [extraRules]),
      ],
    })

  test('to an allowed host: sent there, with the Host of the new URL', async () => {
    const { fetch } = rewriting((port) => `http://other.test:${port}/moved`, { host: 'other.test', httpsOnly: false, port: server.port })
    ok(await fetch.request({ url: `${base}/original` }, ctx()))
    expect(server.requests.at(-1)!.url).toBe('/moved')
    expect(server.requests.at(-1)!.headers.host).toBe(`other.test:${server.port}`)
  })

  test('to a host no rule allows: denied (the gates run again)', async () => {
    const before = server.requests.length
    const { fetch } = rewriting((port) => `http://other.test:${port}/moved`)
    expect(errorOf(await fetch.request({ url: `${base}/original` }, ctx()))?.code).toBe('denied')
    expect(server.requests.length).toBe(before)
  })

  test('to a name that resolves to a private address, even one a rule allows: blocked_address', async () => {
    const { fetch } = rewriting(() => 'http://internal.test/admin', { host: 'internal.test', httpsOnly: false })
    expect(errorOf(await fetch.request({ url: `${base}/original` }, ctx()))?.code).toBe('blocked_address')
  })

  test('to the metadata address in any spelling: refused before any connection', async () => {
    for (const target of ['http://169.254.169.254/latest/meta-data/', 'http://2852039166/']) {
      const { fetch } = rewriting(() => target, { host: '169.254.169.254', httpsOnly: false })
      expect(errorOf(await fetch.request({ url: `${base}/original` }, ctx()))?.code).toBe('blocked_address')
    }
  })
})

describe('streams and redirects', () => {
  test('a synthetic answer to a stream is streamed; the stream body is not readable by middleware', async () => {
    const synthetic = fetchWith({ middleware: () => respond({ status: 200, body: 'made up' }), rules: { host: 'api.test', httpsOnly: false, port: server.port } })
    const stream = await synthetic.fetch.stream({ url: `${base}/s` }, ctx())
    if ('error' in stream) throw new Error(stream.error.message)
    const chunks: Uint8Array[] = []
    for await (const chunk of stream) chunks.push(chunk)
    expect(Buffer.concat(chunks).toString()).toBe('made up')
    const reading = fetchWith({ middleware: async (_c, next) => (await next()).text(), rules: { host: 'api.test', httpsOnly: false, port: server.port } })
    expect(errorOf(await reading.fetch.stream({ url: `${base}/s` }, ctx()))).toEqual({ code: 'internal', message: 'internal error in host middleware' })
  })

  test('a followed cross-origin redirect gets the new origin middleware, never the first origin credentials', async () => {
    const { fetch } = fetchWith({
      maxRedirects: 2,
      resolver: tableResolver({ 'api.test': ['127.0.0.1'], 'other.test': ['127.0.0.1'] }),
      rules: [
        { host: 'api.test', httpsOnly: false, port: server.port, middleware: (c, next) => (c.req.header('authorization', `Bearer ${SECRET}`), next()) },
        { host: 'other.test', httpsOnly: false, port: server.port, middleware: (c, next) => (c.req.header('x-other-key', `hop ${c.req.hop}`), next()) },
      ],
    })
    const before = server.requests.length
    const reply = ok(await fetch.request({ url: `${base}/redirect-away?port=${server.port}`, options: { redirect: 'follow' } }, ctx()))
    expect(reply.meta).toMatchObject({ redirects: 1, finalUrl: `http://other.test:${server.port}/landing` })
    const [first, second] = server.requests.slice(before)
    expect(authorization(first!)).toBe(`Bearer ${SECRET}`)
    expect(authorization(second!)).toBeUndefined()
    expect(second!.headers['x-other-key']).toBe('hop 1')
  })
})

test('invalid middleware is refused at creation, naming where', () => {
  expect(() => testFetch({ middleware: 'auth' as never })).toThrow('middleware: middleware must be a function')
  expect(() => testFetch({ middleware: [() => undefined, 1 as never] })).toThrow('middleware[1]: middleware must be a function')
  expect(() => testFetch({ rules: { host: 'api.test', routes: [{ path: '/', middleware: {} as never }] } })).toThrow('rules[0] (host "api.test"): routes[0] ("/"): middleware: middleware must be a function')
})

describe('review regressions', () => {
  test('a secret in a URL query set by middleware never reaches the capsule or the events', async () => {
    const { fetch, events } = fetchWith({
      resolver: tableResolver({ 'api.test': ['127.0.0.1'], 'other.test': ['127.0.0.1'] }),
      rules: { host: 'api.test', httpsOnly: false, port: server.port, middleware: (c, next) => (c.req.setUrl(`http://other.test:${server.port}/x?key=${SECRET}`), next()) },
    })
    const reply = await fetch.request({ url: `${base}/y` }, ctx())
    expect(errorOf(reply)?.code).toBe('denied')
    expectNoSecret(reply, events)
  })

  test('a next() the chain did not wait for: its late response is dropped and its connection closed', async () => {
    let closed!: () => void
    const upstreamClosed = new Promise<void>((resolve) => (closed = resolve))
    const slow = await startServer((req, res) => {
      req.socket.on('close', closed)
      setTimeout(() => {
        res.writeHead(200)
        res.write('late')
      }, 50)
    })
    const { fetch } = fetchWith({
      rules: { host: 'api.test', httpsOnly: false, port: slow.port },
      middleware: (_c, next) => {
        void next().catch(() => undefined)
        return respond({ status: 202 })
      },
    })
    expect(ok(await fetch.request({ url: `http://api.test:${slow.port}/` }, ctx())).status).toBe(202)
    await upstreamClosed
  })

  test('a middleware refusal is credited to the middleware in the audit log; a value with no JSON form is a bug', async () => {
    const { CapsuleHostError } = await import('../src/index.js')
    const refusing = fetchWith({
      middleware: () => {
        throw new CapsuleHostError('denied', 'quota exceeded')
      },
      rules: { host: 'api.test', httpsOnly: false, port: server.port },
    })
    await refusing.fetch.request({ url: `${base}/q` }, ctx())
    expect(refusing.events).toEqual([expect.objectContaining({ allowed: false, decidedBy: 'middleware', reason: 'refused by middleware', detail: 'quota exceeded' })])
    const weird = fetchWith({ middleware: (async (_c: unknown, next: () => Promise<unknown>) => (await next(), () => 1)) as never, rules: { host: 'api.test', httpsOnly: false, port: server.port } })
    expect(errorOf(await weird.fetch.request({ url: `${base}/w` }, ctx()))).toEqual({ code: 'internal', message: 'internal error in host middleware' })
    expect(weird.events).toEqual([expect.objectContaining({ allowed: true, decidedBy: 'rule:api.test', code: 'internal', error: expect.objectContaining({ name: 'TypeError' }) })])
  })
})
