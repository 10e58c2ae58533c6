// Trace context propagation sends W3C traceparent/tracestate only, checked: never the host's baggage or another propagator's fields, never a bad header.
import { context, propagation, type TextMapPropagator } from '@opentelemetry/api'
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { createSafeFetch, type SafeFetch, type SafeFetchOptions } from '../src/index.js'
import { errorOf, tableResolver } from './helpers/fetch.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'
import { registerTestSdk, type TestSdk } from './helpers/telemetry-sdk.js'

let sdk: TestSdk
let server: TestServer
beforeAll(async () => {
  sdk = registerTestSdk()
  server = await startServer((_req, res) => void res.end('ok'))
})
afterEach(() => {
  sdk.resetSpans()
  propagation.disable()
  propagation.setGlobalPropagator(new W3CTraceContextPropagator())
})
afterAll(async () => {
  await Promise.all(fetches.splice(0).map((fetch) => fetch.close()))
  await closeAllServers()
  await sdk.shutdown()
})
const fetches: SafeFetch[] = []
function safeFetch(options: SafeFetchOptions = {}) {
  const fetch = createSafeFetch({
    rules: [{ host: 'api.test', httpsOnly: false, port: server.port }],
    resolver: tableResolver({ 'api.test': ['127.0.0.1'] }),
    addressPolicy: { unsafeAllow: ['127.0.0.1/32'] },
    ...options,
  })
  fetches.push(fetch)
  return fetch
}
const CTX = { capsuleId: 'cap-propagation' }
const url = (path: string) => `http://api.test:${server.port}${path}`

describe('propagation sends only trace context', () => {
  test("the host's baggage (NodeSDK's default propagator is tracecontext+baggage) never reaches a capsule's upstream", async () => {
    propagation.disable()
    propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }))
    const baggage = propagation.createBaggage({ 'user.email': { value: 'alice@corp.example' }, 'session.token': { value: 's3cr3t' } })
    const seen = server.requests.length
    const reply = await context.with(propagation.setBaggage(context.active(), baggage), () =>
      safeFetch({ telemetry: { propagateTraceContext: true } }).request({ url: url('/') }, CTX),
    )
    expect(errorOf(reply)).toBeUndefined()
    const [sent] = server.requests.slice(seen)
    expect(sent!.headers.traceparent).toMatch(/^00-/)
    // Before the fix: baggage: 'user.email=alice%40corp.example,session.token=s3cr3t'
    expect(sent!.headers.baggage).toBeUndefined()
  })

  test('a propagator that writes a bad header value does not change the request', async () => {
    const bad: TextMapPropagator = {
      inject: (_ctx, carrier, setter) => setter.set(carrier, 'x-trace', 'a\r\nx-injected: 1'),
      extract: (ctx) => ctx,
      fields: () => ['x-trace'],
    }
    propagation.disable()
    propagation.setGlobalPropagator(bad)
    const reply = await safeFetch({ telemetry: { propagateTraceContext: true } }).request({ url: url('/') }, CTX)
    // Before the fix: the request fails (observing changed it).
    expect(errorOf(reply)).toBeUndefined()
  })

  test('a propagator that writes a host-only header (content-length) does not change the request', async () => {
    const bad: TextMapPropagator = {
      inject: (_ctx, carrier, setter) => setter.set(carrier, 'Content-Length', '999'),
      extract: (ctx) => ctx,
      fields: () => ['content-length'],
    }
    propagation.disable()
    propagation.setGlobalPropagator(bad)
    const reply = await safeFetch({ telemetry: { propagateTraceContext: true } }).request({ url: url('/'), method: 'POST', body: 'hi' }, CTX)
    expect(errorOf(reply)).toBeUndefined()
  })

  test("a capsule's own baggage is never merged with the host's (one header, two sources, the capsule's entries first)", async () => {
    propagation.disable()
    propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }))
    const baggage = propagation.createBaggage({ tenant: { value: 'acme' } })
    const seen = server.requests.length
    const reply = await context.with(propagation.setBaggage(context.active(), baggage), () =>
      safeFetch({ telemetry: { propagateTraceContext: true } }).request({ url: url('/'), headers: { baggage: 'tenant=victim,role=admin' } }, CTX),
    )
    expect(errorOf(reply)).toBeUndefined()
    // Before the fix: 'tenant=victim,role=admin, tenant=acme' (an upstream reading the first tenant takes the capsule's).
    expect(server.requests.slice(seen).map((request) => request.headers.baggage)).toEqual(['tenant=victim,role=admin'])
  })
})
