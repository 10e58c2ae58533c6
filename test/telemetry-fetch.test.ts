// End to end: a real safe fetch against loopback upstreams makes the request and stream spans, trace context and metrics.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { createSafeFetch, type SafeFetch, type SafeFetchOptions } from '../src/index.js'
import { errorOf, tableResolver } from './helpers/fetch.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'
import { pointsOf, registerTestSdk, type TestSdk } from './helpers/telemetry-sdk.js'

const BODY = 'x'.repeat(5000)

function upstream(req: IncomingMessage, res: ServerResponse) {
  const { pathname } = new URL(req.url!, 'http://x')
  if (pathname === '/fail') return void res.writeHead(500).end('no')
  if (pathname === '/never') return
  if (pathname === '/redirect') return void res.writeHead(302, { location: '/' }).end()
  if (pathname === '/reset') {
    res.writeHead(200, { 'content-length': 100 })
    // Reset once the head and a part of the body are on the wire: the client waits for the rest.
    return void res.write('part', () => res.socket?.destroy())
  }
  res.end(BODY)
}

let sdk: TestSdk
let server: TestServer
beforeAll(async () => {
  sdk = registerTestSdk()
  server = await startServer(upstream)
})
afterEach(async () => {
  sdk.resetSpans()
  await sdk.resetMetrics()
})
afterAll(async () => {
  await Promise.all(fetches.splice(0).map((fetch) => fetch.close()))
  await closeAllServers()
  await sdk.shutdown()
})

const fetches: SafeFetch[] = []
/** `api.test` on the loopback server; `private.test` resolves to 10.0.0.1 (refused before any connection). */
function safeFetch(options: SafeFetchOptions = {}) {
  const resolver = tableResolver({ 'api.test': ['127.0.0.1'], 'private.test': ['10.0.0.1'] })
  const fetch = createSafeFetch({
    rules: [{ host: 'api.test', httpsOnly: false, port: server.port }, { host: 'private.test', httpsOnly: false, port: server.port }],
    resolver,
    addressPolicy: { unsafeAllow: ['127.0.0.1/32'] },
    ...options,
  })
  fetches.push(fetch)
  return Object.assign(fetch, { asked: resolver.asked })
}

const CTX = { capsuleId: 'cap-e2e' }
const url = (path: string, host = 'api.test') => `http://${host}:${server.port}${path}`

/** The one span ended so far. */
function onlySpan(): ReadableSpan {
  const spans = sdk.spans()
  expect(spans.map((span) => span.name)).toHaveLength(1)
  return spans[0]!
}

describe('request spans', () => {
  test('an allowed 200: a CLIENT span GET with semconv attributes, the query redacted, and the bytes', async () => {
    const fetch = safeFetch()
    const reply = await fetch.request({ url: url('/items?token=hunter2&page=2'), method: 'POST', body: 'hello' }, CTX)
    expect(errorOf(reply)).toBeUndefined()
    const span = onlySpan()
    expect(span).toMatchObject({ name: 'POST', kind: SpanKind.CLIENT, status: { code: SpanStatusCode.UNSET } })
    expect(span.attributes).toMatchObject({
      'http.request.method': 'POST',
      'url.full': `http://api.test:${server.port}/items?…`,
      'server.address': 'api.test',
      'server.port': server.port,
      'http.response.status_code': 200,
      'capsule_host.capsule.id': 'cap-e2e',
      'capsule_host.request.kind': 'request',
      'capsule_host.abi': 'capsule-host',
      'capsule_host.decided_by': 'rule:api.test',
      'capsule_host.response.bytes': BODY.length,
      'capsule_host.request.bytes': 5,
      'capsule_host.redirects': 0,
    })
    expect(span.attributes).not.toHaveProperty('error.type')
    // Nothing of the query anywhere on the span.
    expect(JSON.stringify(span.attributes)).not.toMatch(/hunter2|page=2/)
  })

  test('upstream 500: error.type "500", status ERROR', async () => {
    await safeFetch().request({ url: url('/fail') }, CTX)
    expect(onlySpan().attributes).toMatchObject({ 'http.response.status_code': 500, 'error.type': '500' })
    expect(onlySpan().status.code).toBe(SpanStatusCode.ERROR)
  })

  test.each<[string, string, string, Record<string, unknown>]>([
    ['denied by the rules (never resolved)', 'denied', 'elsewhere.test', { 'capsule_host.decision': 'refused', 'capsule_host.decided_by': 'rules' }],
    ['a name resolving to 10.0.0.1 (refused before any connection)', 'blocked_address', 'private.test', { 'capsule_host.decision': 'refused', 'capsule_host.decided_by': 'address-policy', 'capsule_host.address.class': 'private' }],
  ])('%s: a span with error.type %s', async (_name, code, host, attributes) => {
    const fetch = safeFetch()
    const before = server.connections
    expect(errorOf(await fetch.request({ url: url('/', host) }, CTX))?.code).toBe(code)
    const span = onlySpan()
    expect(span.name).toBe('GET')
    expect(span.status.code).toBe(SpanStatusCode.ERROR)
    expect(span.attributes).toMatchObject({ 'error.type': code, 'capsule_host.reason': expect.any(String), ...attributes })
    expect(server.connections).toBe(before)
    if (code === 'denied') expect(fetch.asked).toEqual([])
  })

  test('a reset mid-body: allowed, error.type network', async () => {
    expect(errorOf(await safeFetch().request({ url: url('/reset') }, CTX))?.code).toBe('network')
    expect(onlySpan().attributes).toMatchObject({ 'capsule_host.decision': 'allowed', 'error.type': 'network' })
  })

  test('a timeout: error.type timeout with its phase', async () => {
    expect(errorOf(await safeFetch().request({ url: url('/never'), options: { firstByteTimeoutMs: 50 } }, CTX))?.code).toBe('timeout')
    expect(onlySpan().attributes).toMatchObject({ 'error.type': 'timeout', 'capsule_host.timeout.phase': 'first_byte' })
  })

  test('invalid requests are spans too: a bad body, and a capsule that sets its own traceparent', async () => {
    const fetch = safeFetch({ telemetry: { propagateTraceContext: true } })
    expect(errorOf(await fetch.request('{"url":', CTX))?.code).toBe('invalid_request')
    const forged = `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`
    expect(errorOf(await fetch.request({ url: url('/'), headers: { traceparent: forged } }, CTX))?.code).toBe('invalid_request')
    expect(errorOf(await fetch.request({ url: url('/'), headers: [['TraceState', 'k=v']] }, CTX))?.code).toBe('invalid_request')
    const spans = sdk.spans()
    expect(spans.map((span) => [span.name, span.attributes['error.type'], span.attributes['capsule_host.decided_by']])).toEqual([
      ['HTTP', 'invalid_request', 'validation'],
      ['HTTP', 'invalid_request', 'validation'],
      ['HTTP', 'invalid_request', 'validation'],
    ])
    expect(server.requests.some((request) => request.headers.traceparent === forged)).toBe(false)
  })

  test('a request inside an active span is its child', async () => {
    const outer = trace.getTracer('test').startSpan('host handler')
    await context.with(trace.setSpan(context.active(), outer), () => safeFetch().request({ url: url('/') }, CTX))
    outer.end()
    const request = sdk.spans().find((span) => span.kind === SpanKind.CLIENT)!
    expect(request.parentSpanContext?.spanId).toBe(outer.spanContext().spanId)
  })

  test('telemetry: false makes no span', async () => {
    const fetch = safeFetch({ telemetry: false })
    expect(fetch.telemetry).toBeUndefined()
    await fetch.request({ url: url('/') }, CTX)
    expect(sdk.spans()).toEqual([])
  })
})

describe('trace context for upstreams', () => {
  test('propagateTraceContext: the upstream receives the traceparent of the request span', async () => {
    const seen = server.requests.length
    await safeFetch({ telemetry: { propagateTraceContext: true } }).request({ url: url('/') }, CTX)
    const { traceId, spanId } = onlySpan().spanContext()
    expect(server.requests.slice(seen).map((request) => request.headers.traceparent)).toEqual([`00-${traceId}-${spanId}-01`])
  })

  test('a followed redirect is one span (capsule_host.redirects 1) and every hop carries its traceparent', async () => {
    const seen = server.requests.length
    await safeFetch({ maxRedirects: 1, telemetry: { propagateTraceContext: true } }).request({ url: url('/redirect'), options: { redirect: 'follow' } }, CTX)
    const span = onlySpan()
    expect(span.attributes).toMatchObject({ 'capsule_host.redirects': 1, 'http.response.status_code': 200, 'url.full': url('/redirect') })
    const { traceId, spanId } = span.spanContext()
    expect(server.requests.slice(seen).map((request) => [request.url, request.headers.traceparent])).toEqual([
      ['/redirect', `00-${traceId}-${spanId}-01`],
      ['/', `00-${traceId}-${spanId}-01`],
    ])
  })

  test('off by default: no traceparent upstream', async () => {
    const seen = server.requests.length
    await safeFetch().request({ url: url('/') }, CTX)
    onlySpan()
    expect(server.requests.slice(seen).map((request) => request.headers.traceparent)).toEqual([undefined])
  })
})

describe('streams', () => {
  test('a stream: open streams goes to 1 at its head and back to 0 at its end; its span has its bytes', async () => {
    const fetch = safeFetch({ telemetry: { propagateTraceContext: true } })
    const stream = await fetch.stream({ url: url('/') }, CTX)
    if ('error' in stream) throw new Error(stream.error.message)
    expect(pointsOf(await sdk.metric('capsule_host.streams.open'))).toEqual([{ attributes: {}, value: 1 }])
    expect(sdk.spans()).toEqual([])
    let bytes = 0
    for await (const chunk of stream) bytes += chunk.byteLength
    expect(bytes).toBe(BODY.length)
    expect(pointsOf(await sdk.metric('capsule_host.streams.open'))).toEqual([{ attributes: {}, value: 0 }])
    const span = onlySpan()
    expect(span).toMatchObject({ name: 'GET', kind: SpanKind.CLIENT })
    expect(span.attributes).toMatchObject({ 'capsule_host.request.kind': 'stream', 'capsule_host.response.bytes': BODY.length, 'http.response.status_code': 200 })
    expect(server.requests.at(-1)!.headers.traceparent).toBe(`00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`)
  })

  test('a stream closed early also ends its span and its open count', async () => {
    const stream = await safeFetch().stream({ url: url('/') }, CTX)
    if ('error' in stream) throw new Error(stream.error.message)
    stream.close()
    expect(pointsOf(await sdk.metric('capsule_host.streams.open'))).toEqual([{ attributes: {}, value: 0 }])
    expect(onlySpan().attributes['capsule_host.request.kind']).toBe('stream')
  })

  test('a stream reset mid-body: the read fails with network, its span has error.type network, open streams back to 0', async () => {
    const stream = await safeFetch().stream({ url: url('/reset') }, CTX)
    if ('error' in stream) throw new Error(stream.error.message)
    expect(pointsOf(await sdk.metric('capsule_host.streams.open'))).toEqual([{ attributes: {}, value: 1 }])
    const failure = await (async () => {
      for (;;) if ((await stream.read()) === null) return undefined
    })().catch((error: { code?: string }) => error.code)
    expect(failure).toBe('network')
    expect(pointsOf(await sdk.metric('capsule_host.streams.open'))).toEqual([{ attributes: {}, value: 0 }])
    expect(onlySpan().attributes).toMatchObject({ 'capsule_host.request.kind': 'stream', 'capsule_host.decision': 'allowed', 'error.type': 'network' })
    expect(onlySpan().status.code).toBe(SpanStatusCode.ERROR)
  })

  test('a stream refused at its start never counts as open', async () => {
    expect(errorOf(await safeFetch().stream({ url: url('/', 'elsewhere.test') }, CTX))?.code).toBe('denied')
    expect(pointsOf(await sdk.metric('capsule_host.streams.open'))).toEqual([])
    expect(onlySpan().attributes).toMatchObject({ 'capsule_host.request.kind': 'stream', 'error.type': 'denied' })
  })
})

describe('quotas', () => {
  test('rate_limited: a span with retry_after_ms, a refusal by quota:<id>, and the counts by decision and code', async () => {
    const fetch = safeFetch({ quotas: [{ id: 'per-capsule', key: 'capsule', requests: { limit: 1, windowMs: 60_000 } }] })
    expect(errorOf(await fetch.request({ url: url('/') }, CTX))).toBeUndefined()
    expect(errorOf(await fetch.request({ url: url('/') }, CTX))?.code).toBe('rate_limited')
    const [, refused] = sdk.spans()
    expect(refused!.attributes).toMatchObject({ 'error.type': 'rate_limited', 'capsule_host.decided_by': 'quota:per-capsule', 'capsule_host.decision': 'refused', 'capsule_host.retry_after_ms': expect.any(Number) })
    expect(pointsOf(await sdk.metric('capsule_host.quota.refusals'))).toEqual([{ attributes: { 'capsule_host.decided_by': 'quota:per-capsule' }, value: 1 }])
    const common = { 'capsule_host.request.kind': 'request', 'capsule_host.abi': 'capsule-host', 'http.request.method': 'GET' }
    expect(pointsOf(await sdk.metric('capsule_host.requests'))).toEqual(expect.arrayContaining([
      { attributes: { ...common, 'capsule_host.decision': 'allowed', 'capsule_host.code': 'none', 'http.response.status_code': 200 }, value: 1 },
      { attributes: { ...common, 'capsule_host.decision': 'refused', 'capsule_host.code': 'rate_limited', 'error.type': 'rate_limited' }, value: 1 },
    ]))
  })
})

describe('quotas on streams', () => {
  test('a stream over its concurrent quota is a stream span with rate_limited, and only the open one counts as open', async () => {
    const fetch = safeFetch({ quotas: [{ id: 'one-at-once', key: 'capsule', concurrent: 1 }] })
    const first = await fetch.stream({ url: url('/') }, CTX)
    if ('error' in first) throw new Error(first.error.message)
    expect(errorOf(await fetch.stream({ url: url('/') }, CTX))?.code).toBe('rate_limited')
    expect(pointsOf(await sdk.metric('capsule_host.streams.open'))).toEqual([{ attributes: {}, value: 1 }])
    expect(onlySpan().attributes).toMatchObject({ 'capsule_host.request.kind': 'stream', 'error.type': 'rate_limited', 'capsule_host.decided_by': 'quota:one-at-once', 'capsule_host.retry_after_ms': 100 })
    first.close()
    expect(pointsOf(await sdk.metric('capsule_host.streams.open'))).toEqual([{ attributes: {}, value: 0 }])
    // Closed by the capsule, the open stream ends as a 200 without an error.
    expect(sdk.spans().map((span) => [span.attributes['error.type'], span.attributes['http.response.status_code']])).toEqual([['rate_limited', undefined], [undefined, 200]])
  })
})

describe('request metrics', () => {
  test('counts and durations by decision and code over allowed, failed and refused requests', async () => {
    const fetch = safeFetch()
    await fetch.request({ url: url('/') }, CTX)
    await fetch.request({ url: url('/') }, CTX)
    await fetch.request({ url: url('/fail') }, CTX)
    await fetch.request({ url: url('/reset') }, CTX)
    await fetch.request({ url: url('/', 'elsewhere.test') }, CTX)
    await fetch.request({ url: url('/', 'private.test') }, CTX)
    const common = { 'capsule_host.request.kind': 'request', 'capsule_host.abi': 'capsule-host', 'http.request.method': 'GET' }
    const expected = [
      { attributes: { ...common, 'capsule_host.decision': 'allowed', 'capsule_host.code': 'none', 'http.response.status_code': 200 }, value: 2 },
      { attributes: { ...common, 'capsule_host.decision': 'allowed', 'capsule_host.code': 'none', 'http.response.status_code': 500, 'error.type': '500' }, value: 1 },
      { attributes: { ...common, 'capsule_host.decision': 'allowed', 'capsule_host.code': 'network', 'error.type': 'network' }, value: 1 },
      { attributes: { ...common, 'capsule_host.decision': 'refused', 'capsule_host.code': 'denied', 'error.type': 'denied' }, value: 1 },
      { attributes: { ...common, 'capsule_host.decision': 'refused', 'capsule_host.code': 'blocked_address', 'error.type': 'blocked_address' }, value: 1 },
    ]
    const requests = pointsOf(await sdk.metric('capsule_host.requests'))
    expect(requests).toEqual(expect.arrayContaining(expected))
    expect(requests).toHaveLength(expected.length)
    const durations = pointsOf(await sdk.metric('http.client.request.duration'))
    expect(durations).toEqual(expect.arrayContaining(expected))
    expect(durations).toHaveLength(expected.length)
  })
})
