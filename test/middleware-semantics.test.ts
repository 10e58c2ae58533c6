// Table: every middleware result shape, buffered and streamed, and exactly what the capsule gets (status, encoding, body, upstream calls).
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { json, respond, type AuditEvent, type Middleware, type MiddlewareResponse } from '../src/index.js'
import { closeAllFetches, ctx, ok, testFetch } from './helpers/fetch.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'

afterAll(async () => {
  await closeAllFetches()
  await closeAllServers()
})

const UPSTREAM = { items: [1, 2, 3], name: 'upstream' }
let server: TestServer
beforeAll(async () => {
  server = await startServer((_req, res) => {
    res.setHeader('content-type', 'application/json')
    res.setHeader('x-upstream', 'yes')
    res.end(JSON.stringify(UPSTREAM))
  })
})

const text = (value: unknown) => JSON.stringify(value)
const upstreamText = text(UPSTREAM)

/** What the capsule must get: buffered (status, encoding, body) and streamed (status, bytes), and the upstream calls. */
interface Expected {
  status: number
  encoding: 'json' | 'text'
  body: unknown
  /** The stream's bytes; undefined: the same as the buffered body's text. `internal`: the stream fails so. */
  streamed?: string | 'internal'
  upstreamCalls: number
  contentType?: string
}

const rows: Array<[string, Middleware, Expected]> = [
  ['before next(): a plain { status, headers, body: object }',
    () => ({ status: 202, headers: { 'content-type': 'application/json' }, body: { queued: true, id: 7 } }),
    { status: 202, encoding: 'json', body: { queued: true, id: 7 }, upstreamCalls: 0, contentType: 'application/json' }],
  ['before next(): respond({ body: object }) gets a JSON content-type',
    () => respond({ status: 202, body: { queued: true } }),
    { status: 202, encoding: 'json', body: { queued: true }, upstreamCalls: 0, contentType: 'application/json' }],
  ['before next(): json(value, { status })',
    () => json({ ok: true }, { status: 201 }),
    { status: 201, encoding: 'json', body: { ok: true }, upstreamCalls: 0, contentType: 'application/json' }],
  ['before next(): json(string) is a JSON string, not text',
    () => json('hello'),
    { status: 200, encoding: 'json', body: 'hello', streamed: '"hello"', upstreamCalls: 0 }],
  ['before next(): a string body is text',
    () => respond({ status: 200, body: 'hello' }),
    { status: 200, encoding: 'text', body: 'hello', upstreamCalls: 0, contentType: 'text/plain; charset=utf-8' }],
  ['before next(): bytes are bytes',
    () => respond({ status: 200, body: new TextEncoder().encode('raw') }),
    { status: 200, encoding: 'text', body: 'raw', upstreamCalls: 0 }],
  ['before next(): a number body is JSON', () => respond({ status: 200, body: 42 }), { status: 200, encoding: 'json', body: 42, upstreamCalls: 0 }],
  ['before next(): a boolean body is JSON', () => ({ status: 200, body: false }), { status: 200, encoding: 'json', body: false, upstreamCalls: 0 }],
  ['before next(): a null body is JSON', () => ({ status: 200, body: null }), { status: 200, encoding: 'json', body: null, upstreamCalls: 0 }],
  ['before next(): an array body is JSON', () => ({ status: 200, body: [1, 'a'] }), { status: 200, encoding: 'json', body: [1, 'a'], upstreamCalls: 0 }],
  ['before next(): no body is empty', () => respond({ status: 204 }), { status: 204, encoding: 'text', body: '', upstreamCalls: 0 }],
  ['after next(): the response itself',
    async (_c, next) => next(),
    { status: 200, encoding: 'text', body: upstreamText, upstreamCalls: 1, contentType: 'application/json' }],
  ['after next(): undefined keeps the response',
    async (_c, next) => void (await next()),
    { status: 200, encoding: 'text', body: upstreamText, upstreamCalls: 1 }],
  ['after next(): { ...res, body: data } (the rewrite pattern)',
    async (c, next) => {
      const res = await next()
      if (c.req.kind === 'stream') return { ...res, body: { rewritten: true } }
      const data = JSON.parse(res.text()) as typeof UPSTREAM
      return { ...res, body: { ...data, extra: 1 } }
    },
    { status: 200, encoding: 'json', body: { ...UPSTREAM, extra: 1 }, streamed: text({ rewritten: true }), upstreamCalls: 1, contentType: 'application/json' }],
  ['after next(): { ...res, status } keeps the upstream body (streamed too)',
    async (_c, next) => ({ ...(await next()), status: 299 }),
    { status: 299, encoding: 'text', body: upstreamText, upstreamCalls: 1, contentType: 'application/json' }],
  ['after next(): { ...res, headers } replaces the headers, keeps the body',
    async (_c, next) => {
      const res = await next()
      return { ...res, headers: { ...res.headers, 'content-type': 'text/x-marked' } }
    },
    { status: 200, encoding: 'text', body: upstreamText, upstreamCalls: 1, contentType: 'text/x-marked' }],
  ['after next(): a plain { status, body } is the response',
    async (_c, next) => (await next(), { status: 299, body: { replaced: true } }),
    { status: 299, encoding: 'json', body: { replaced: true }, upstreamCalls: 1 }],
  ['after next(): return await res.json() (buffered); the stream refuses to read the body',
    async (_c, next) => (await next()).json(),
    { status: 200, encoding: 'json', body: UPSTREAM, streamed: 'internal', upstreamCalls: 1 }],
  ['after next(): any other value is the JSON body of that response',
    async (_c, next) => (await next(), { items: [] }),
    { status: 200, encoding: 'json', body: { items: [] }, upstreamCalls: 1, contentType: 'application/json' }],
  ['after next(): a string is a JSON string body',
    async (_c, next) => (await next(), 'done'),
    { status: 200, encoding: 'json', body: 'done', streamed: '"done"', upstreamCalls: 1 }],
]

async function streamed(fetch: ReturnType<typeof testFetch>, url: string) {
  const stream = await fetch.stream({ url }, ctx())
  if ('error' in stream) return { error: stream.error }
  const chunks: Uint8Array[] = []
  for await (const chunk of stream) chunks.push(chunk)
  return { status: stream.status, headers: stream.headers, bytes: Buffer.concat(chunks).toString() }
}

describe.each(rows)('%s', (_name, middleware, expected) => {
  const fetch = () => testFetch({ rules: { host: 'api.test', httpsOnly: false, port: server.port, middleware } })

  test('buffered: exact status, encoding and body; upstream calls', async () => {
    const before = server.requests.length
    const reply = ok(await fetch().request({ url: `http://api.test:${server.port}/r` }, ctx()))
    expect({ status: reply.status, encoding: reply.bodyEncoding, body: reply.body }).toEqual({ status: expected.status, encoding: expected.encoding, body: expected.body })
    if (expected.contentType) expect(reply.headers['content-type']).toBe(expected.contentType)
    expect(server.requests.length - before).toBe(expected.upstreamCalls)
  })

  test('streamed: exact status and bytes; upstream calls', async () => {
    const before = server.requests.length
    const result = await streamed(fetch(), `http://api.test:${server.port}/s`)
    expect(server.requests.length - before).toBe(expected.upstreamCalls)
    if (expected.streamed === 'internal') {
      expect(result).toEqual({ error: { code: 'internal', message: 'internal error in host middleware' } })
      return
    }
    const bytes = expected.streamed ?? (typeof expected.body === 'string' && expected.encoding === 'text' ? expected.body : text(expected.body))
    expect(result).toMatchObject({ status: expected.status, bytes })
    if (expected.contentType) expect((result as { headers: Record<string, string> }).headers['content-type']).toBe(expected.contentType)
  })
})

test('ctx.req.kind says which host function made the request', async () => {
  const kinds: string[] = []
  const fetch = testFetch({ rules: { host: 'api.test', httpsOnly: false, port: server.port, middleware: (c) => (kinds.push(c.req.kind), respond({ status: 204 })) } })
  ok(await fetch.request({ url: `http://api.test:${server.port}/k` }, ctx()))
  expect('error' in (await fetch.stream({ url: `http://api.test:${server.port}/k` }, ctx()))).toBe(false)
  expect(kinds).toEqual(['request', 'stream'])
})

describe('a result that cannot be a response is internal to the capsule and explained to the host', () => {
  const circular: Record<string, unknown> = {}
  circular.self = circular
  test.each<[string, Middleware, RegExp]>([
    ['a value without next()', () => ({ some: 'value' }), /returned a value without calling next\(\)/],
    ['nothing without next()', () => undefined, /returned nothing and never called next\(\)/],
    ['a function after next()', (async (_c: unknown, next: () => Promise<unknown>) => (await next(), () => 1)) as never, /no JSON form/],
    ['a BigInt body', () => respond({ status: 200, body: { n: 1n } }), /no JSON form/],
    ['a circular body', () => ({ status: 200, body: circular }), /no JSON form/],
    ['an invalid status in a copy', async (_c, next) => ({ ...(await next()), status: 42 }), /status must be a whole number from 100 to 599/],
    ['a header that is not a string in a copy', (async (_c: unknown, next: () => Promise<object>) => ({ ...(await next()), headers: { 'x-n': 1 } })) as never, /header "x-n" must be a string/],
    ['reading a stream body', async (c, next) => (c.req.kind === 'stream' ? (await next()).text() : respond({ status: 500 })), /the body of a stream is not buffered/],
  ])('%s', async (_name, middleware, cause) => {
    const events: AuditEvent[] = []
    const thrown: unknown[] = []
    const fetch = testFetch({
      rules: { host: 'api.test', httpsOnly: false, port: server.port, middleware },
      onRequest: (e) => events.push(e),
      onError: (error, event) => thrown.push([error, event.requestId]),
    })
    const reply = await fetch.stream({ url: `http://api.test:${server.port}/bad` }, ctx())
    expect(reply).toEqual({ error: { code: 'internal', message: 'internal error in host middleware' } })
    expect(events).toEqual([
      expect.objectContaining({ allowed: true, decidedBy: 'rule:api.test', code: 'internal', error: expect.objectContaining({ name: 'TypeError', message: expect.stringMatching(cause) }) }),
    ])
    expect(events[0]!.error!.stack).toContain('TypeError')
    expect(thrown).toEqual([[expect.any(TypeError), events[0]!.requestId]])
  })
})

test('next() gives the middleware a response it can read; its elapsedMs counts the exchange', async () => {
  let seen: MiddlewareResponse | undefined
  const fetch = testFetch({ rules: { host: 'api.test', httpsOnly: false, port: server.port, middleware: async (_c, next) => (seen = await next()) } })
  ok(await fetch.request({ url: `http://api.test:${server.port}/seen` }, ctx()))
  expect(seen!.json()).toEqual(UPSTREAM)
  expect(seen!.headers['x-upstream']).toBe('yes')
  expect(seen!.elapsedMs).toBeGreaterThanOrEqual(0)
})

test.each<[string, () => unknown, string]>([
  ['json() of undefined', () => json(undefined), 'json(): the body has no JSON form (a undefined)'],
  ['json() of a function', () => json(() => 1), 'json(): the body has no JSON form (a function)'],
  ['json() with status 42', () => json({}, { status: 42 }), 'json(): status must be a whole number from 100 to 599, not 42'],
  ['json() with a header that is not a string', () => json({}, { headers: { 'x-n': 1 as never } }), 'json(): header "x-n" must be a string'],
  ['respond() of a BigInt body', () => respond({ status: 200, body: 1n as never }), 'respond(): the body has no JSON form (Do not know how to serialize a BigInt)'],
  ['respond() without an init', () => respond(undefined as never), 'respond(): expected { status, headers?, body? }'],
])('%s is a TypeError with an exact message', (_name, make, message) => {
  expect(make).toThrow(new TypeError(message))
})
