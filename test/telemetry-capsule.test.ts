// End to end: a real wasm capsule's call is a span whose children are the requests it made, in every isolation mode.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest'
import { CapsuleError, createRuntime, createSafeFetch, type Capsule, type Runtime } from '../src/index.js'
import { capsulePath, describeIsolations } from './helpers/capsules.js'
import { tableResolver } from './helpers/fetch.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'
import { registerTestSdk, type TestSdk } from './helpers/telemetry-sdk.js'

function upstream(req: IncomingMessage, res: ServerResponse) {
  res.end(`you asked for ${new URL(req.url!, 'http://x').pathname}`)
}

let sdk: TestSdk
let server: TestServer
beforeAll(async () => {
  sdk = registerTestSdk()
  server = await startServer(upstream)
})
afterEach(() => sdk.resetSpans())
const runtimes: Runtime[] = []
afterAll(async () => {
  await Promise.all(runtimes.map((runtime) => runtime.close()))
  await closeAllServers()
  await sdk.shutdown()
})

const url = (path: string, host = 'api.test') => `http://${host}:${server.port}${path}`

/** The span with this id. */
function spanById(spanId: string | undefined): ReadableSpan | undefined {
  return sdk.spans().find((span) => span.spanContext().spanId === spanId)
}

/** The ended CLIENT spans, each with its parent span (undefined for a root). */
function requestsWithParents() {
  return sdk.spans().filter((span) => span.kind === SpanKind.CLIENT).map((span) => ({ span, parent: spanById(span.parentSpanContext?.spanId) }))
}

describeIsolations('isolation %s', (isolation) => {
  let probe: Capsule
  let kernel: Capsule
  beforeAll(async () => {
    const fetch = createSafeFetch({
      rules: { host: 'api.test', httpsOnly: false, port: server.port },
      resolver: tableResolver({ 'api.test': ['127.0.0.1'] }),
      addressPolicy: { unsafeAllow: ['127.0.0.1/32'] },
      telemetry: { propagateTraceContext: true },
    })
    // One pool thread: in pool isolation both capsules share it.
    const runtime = createRuntime({ fetch, isolation, pool: { size: 1 } })
    runtimes.push(runtime)
    probe = await runtime.load({ wasm: capsulePath('probe'), id: `probe-${isolation}` })
    kernel = await runtime.load({ wasm: capsulePath('extism-http'), id: `kernel-${isolation}` })
  })

  test('a call is an INTERNAL span capsule.call <export>, the parent of its request (and of the upstream traceparent)', async () => {
    const seen = server.requests.length
    const reply = (await probe.call('request', JSON.stringify({ url: url('/one') }))).json<{ status: number }>()
    expect(reply.status).toBe(200)
    const [only, ...others] = requestsWithParents()
    expect(others).toEqual([])
    const { span: request, parent: call } = only!
    expect(call).toBeDefined()
    expect(call!).toMatchObject({ name: 'capsule.call request', kind: SpanKind.INTERNAL, status: { code: SpanStatusCode.UNSET } })
    expect(call!.attributes).toEqual({ 'capsule_host.capsule.id': `probe-${isolation}`, 'capsule_host.export': 'request' })
    expect(request.attributes).toMatchObject({ 'capsule_host.capsule.id': `probe-${isolation}`, 'http.response.status_code': 200, 'capsule_host.abi': 'capsule-host' })
    const { traceId, spanId } = request.spanContext()
    expect(server.requests.slice(seen).map((r) => r.headers.traceparent)).toEqual([`00-${traceId}-${spanId}-01`])
  })

  test('a call made inside a host span is its child', async () => {
    const outer = trace.getTracer('test').startSpan('host handler')
    await context.with(trace.setSpan(context.active(), outer), () => probe.call('request', JSON.stringify({ url: url('/nested') })))
    outer.end()
    const { parent: call } = requestsWithParents()[0]!
    expect(call!.parentSpanContext?.spanId).toBe(outer.spanContext().spanId)
  })

  test('a stream, a refused request and one refused in validation are children of their call spans', async () => {
    await probe.call('stream', JSON.stringify({ url: url('/streamed') }))
    await probe.call('request', JSON.stringify({ url: url('/', 'elsewhere.test') }))
    await probe.call('request', '{"url":')
    const seen = requestsWithParents().map(({ span, parent }) => [span.attributes['capsule_host.request.kind'], span.attributes['error.type'], parent?.name])
    expect(seen).toEqual([
      ['stream', undefined, 'capsule.call stream'],
      ['request', 'denied', 'capsule.call request'],
      ['request', 'invalid_request', 'capsule.call request'],
    ])
    const calls = new Set(requestsWithParents().map(({ parent }) => parent?.spanContext().spanId))
    expect(calls.size).toBe(3)
  })

  test("Extism's kernel http_request (abi extism) is a child of its call", async () => {
    await kernel.call('http_request', JSON.stringify({ url: url('/kernel') }))
    const [{ span, parent }] = requestsWithParents() as [{ span: ReadableSpan; parent: ReadableSpan | undefined }]
    expect(span.attributes).toMatchObject({ 'capsule_host.abi': 'extism', 'http.response.status_code': 200 })
    expect(parent?.name).toBe('capsule.call http_request')
  })

  test('calls queued at once run one at a time: each request is the child of its own call', async () => {
    await Promise.all(['/a', '/b', '/c'].map((path) => probe.call('request', JSON.stringify({ url: url(path) }))))
    const byPath = Object.fromEntries(requestsWithParents().map(({ span, parent }) => [new URL(String(span.attributes['url.full'])).pathname, parent]))
    expect(Object.keys(byPath).sort()).toEqual(['/a', '/b', '/c'])
    const parents = Object.values(byPath)
    expect(parents.every((parent) => parent?.name === 'capsule.call request')).toBe(true)
    expect(new Set(parents.map((parent) => parent!.spanContext().spanId)).size).toBe(3)
  })

  test('two capsules called at once (one pool thread in pool isolation): each request is the child of its own capsule’s call', async () => {
    await Promise.all([
      probe.call('request', JSON.stringify({ url: url('/from-probe') })),
      kernel.call('http_request', JSON.stringify({ url: url('/from-kernel') })),
    ])
    const seen = requestsWithParents().map(({ span, parent }) => [new URL(String(span.attributes['url.full'])).pathname, parent?.attributes['capsule_host.capsule.id']])
    expect(seen.sort()).toEqual([
      ['/from-kernel', `kernel-${isolation}`],
      ['/from-probe', `probe-${isolation}`],
    ])
  })

  test('a call that fails is a span with the CapsuleError code as error.type', async () => {
    const error = await probe.call('no_such', '').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(CapsuleError)
    const span = sdk.spans().find((s) => s.name === 'capsule.call no_such')!
    expect(span.attributes['error.type']).toBe('no_such_export')
    expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: 'no_such_export' })
  })
})
