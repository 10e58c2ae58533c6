// Request header checks: what a capsule may set, what host middleware may set; override headers end to end on loopback.
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { Middleware } from '../src/index.js'
import { checkCapsuleHeaders, checkRequestHeaders, OVERRIDE_HEADERS, type HeaderList } from '../src/net/headers.js'
import { closeAllFetches, ctx, errorOf, ok, testFetch } from './helpers/fetch.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'

afterAll(async () => {
  await closeAllFetches()
  await closeAllServers()
})

/** Asserts that `fn` throws exactly this coded error. */
function expectRefusal(fn: () => unknown, message: string): void {
  expect(fn).toThrow(expect.objectContaining({ code: 'invalid_request', message }))
}

const METHOD = (name: string) => `header "${name}" would make the upstream use another method than the one the rules judged; a capsule may not set it`
const PATH = (name: string) => `header "${name}" would make the upstream use another path than the one the rules judged; a capsule may not set it`

const TRACE = (name: string) => `header "${name}" is trace context, set by the host's telemetry; a capsule may not set it`
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'

const overrides: Array<{ name: string; header: string; value: string; message: string }> = [
  { name: 'x-http-method-override', header: 'x-http-method-override', value: 'DELETE', message: METHOD('x-http-method-override') },
  { name: 'x-http-method', header: 'x-http-method', value: 'DELETE', message: METHOD('x-http-method') },
  { name: 'x-method-override', header: 'x-method-override', value: 'PUT', message: METHOD('x-method-override') },
  { name: 'x-original-url', header: 'x-original-url', value: '/admin', message: PATH('x-original-url') },
  { name: 'x-rewrite-url', header: 'x-rewrite-url', value: '/admin', message: PATH('x-rewrite-url') },
  { name: 'mixed case name is lower-cased first', header: 'X-HTTP-Method-Override', value: 'DELETE', message: METHOD('x-http-method-override') },
  { name: 'upper case name', header: 'X-ORIGINAL-URL', value: '/admin', message: PATH('x-original-url') },
  { name: 'empty value is refused too', header: 'x-http-method', value: '', message: METHOD('x-http-method') },
  { name: 'same method as the request is refused too', header: 'x-http-method-override', value: 'GET', message: METHOD('x-http-method-override') },
  { name: 'traceparent (the host sets trace context)', header: 'traceparent', value: TRACEPARENT, message: TRACE('traceparent') },
  { name: 'Traceparent in mixed case', header: 'Traceparent', value: TRACEPARENT, message: TRACE('traceparent') },
  { name: 'tracestate', header: 'tracestate', value: 'vendor=1', message: TRACE('tracestate') },
  { name: 'an empty traceparent', header: 'traceparent', value: '', message: TRACE('traceparent') },
]

const lookAlikes: Array<{ name: string; headers: Array<[string, string]>; expected: HeaderList }> = [
  { name: 'x-http-method-overrides (one letter more)', headers: [['x-http-method-overrides', 'DELETE']], expected: [['x-http-method-overrides', 'DELETE']] },
  { name: 'x-method (not a known override)', headers: [['x-method', 'DELETE']], expected: [['x-method', 'DELETE']] },
  { name: 'x-original-host', headers: [['x-original-host', 'a']], expected: [['x-original-host', 'a']] },
  { name: 'x-url', headers: [['x-url', '/admin']], expected: [['x-url', '/admin']] },
  { name: 'an override name as a value', headers: [['x-note', 'x-http-method-override']], expected: [['x-note', 'x-http-method-override']] },
  { name: 'traceparents (one letter more)', headers: [['traceparents', 'x']], expected: [['traceparents', 'x']] },
  { name: 'baggage (not trace context we set)', headers: [['baggage', 'k=v']], expected: [['baggage', 'k=v']] },
]

describe('checkCapsuleHeaders', () => {
  test('the table holds exactly the five override headers', () => {
    expect([...OVERRIDE_HEADERS]).toEqual([
      ['x-http-method-override', 'method'],
      ['x-http-method', 'method'],
      ['x-method-override', 'method'],
      ['x-original-url', 'path'],
      ['x-rewrite-url', 'path'],
    ])
  })

  test.each(overrides)('refuses $name', ({ header, value, message }) => {
    expectRefusal(() => checkCapsuleHeaders({ accept: 'text/plain', [header]: value }), message)
    // The same header in the list form.
    expectRefusal(() => checkCapsuleHeaders([[header, value]]), message)
  })

  test.each(lookAlikes)('allows $name', ({ headers, expected }) => {
    expect(checkCapsuleHeaders(headers)).toEqual(expected)
  })

  test('keeps every check of checkRequestHeaders (host-only headers first in the list win)', () => {
    expectRefusal(() => checkCapsuleHeaders([['host', 'evil.test'], ['x-http-method-override', 'DELETE']]), 'header "host" is set by the host; a capsule may not set it')
  })
})

describe('checkRequestHeaders (what host middleware sets)', () => {
  test.each(overrides)('passes $name through', ({ header, value }) => {
    expect(checkRequestHeaders({ [header]: value })).toEqual([[header.toLowerCase(), value]])
  })
})

describe('override headers end to end', () => {
  let server: TestServer
  let base: string
  beforeAll(async () => {
    server = await startServer((req, res) => res.end(JSON.stringify({ method: req.method, override: req.headers['x-http-method-override'] ?? null })))
    base = `http://api.test:${server.port}`
  })

  const getOnly = (middleware?: Middleware) =>
    testFetch({ rules: [{ host: 'api.test', httpsOnly: false, port: server.port, routes: [{ path: '/items/**', methods: 'GET', ...(middleware ? { middleware } : {}) }] }] })

  test.each(overrides.slice(0, 5))('a capsule sending $name on a GET-only route is refused before any request', async ({ header, value, message }) => {
    const fetch = getOnly()
    const before = server.requests.length
    const request = { url: `${base}/items/1`, headers: { [header]: value } }
    expect(errorOf(await fetch.request(request, ctx()))).toEqual({ code: 'invalid_request', message })
    expect(errorOf(await fetch.stream(request, ctx()))).toEqual({ code: 'invalid_request', message })
    expect(server.requests.length).toBe(before)
  })

  test('host middleware may still set x-http-method-override, and it reaches the upstream', async () => {
    const fetch = getOnly((c, next) => (c.req.header('x-http-method-override', 'PATCH'), next()))
    const before = server.requests.length
    const reply = ok(await fetch.request({ url: `${base}/items/1` }, ctx()))
    expect(JSON.parse(reply.body as string)).toEqual({ method: 'GET', override: 'PATCH' })
    expect(server.requests.length).toBe(before + 1)
  })
})
