// The telemetry on its own: request spans, trace context and metrics from AuditEvent-shaped ends, call spans (Capsule on a stand-in engine), and no cost without the API.
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import type { AuditEvent } from '../src/audit.js'
import { CapsuleError } from '../src/errors.js'
import type { ObservedStart } from '../src/fetch/observer.js'
import { createSafeFetch } from '../src/index.js'
import { Capsule, type CapsuleEngine } from '../src/runtime/capsule.js'
import { CapsuleHttp } from '../src/runtime/capsule-http.js'
import { createTelemetry, type Telemetry } from '../src/telemetry/index.js'
import { ManualReader, pointsOf, registerTestSdk, type TestSdk } from './helpers/telemetry-sdk.js'

let sdk: TestSdk
beforeAll(() => {
  sdk = registerTestSdk()
})
afterEach(async () => {
  sdk.resetSpans()
  await sdk.resetMetrics()
})
afterAll(() => sdk.shutdown())

const START: ObservedStart = { capsuleId: 'cap-1', requestId: 'cap-1#1', kind: 'request', abi: 'capsule-host', parent: undefined }

/** An allowed GET that got a 200: the fields every event has, overridden by `fields`. */
function event(fields: Partial<AuditEvent> = {}): AuditEvent {
  return {
    capsuleId: 'cap-1',
    requestId: 'cap-1#1',
    kind: 'request',
    abi: 'capsule-host',
    method: 'GET',
    url: 'https://api.test:8443/v1/items?…',
    allowed: true,
    decidedBy: 'rule:api',
    addressClass: 'unicast',
    status: 200,
    redactions: 0,
    bytesIn: 120,
    bytesOut: 7,
    redirects: 1,
    durationMs: 3,
    ...fields,
  }
}

function telemetry(options = {}): Telemetry {
  const made = createTelemetry(options)
  if (!made) throw new Error('createTelemetry gave nothing with @opentelemetry/api installed')
  return made
}

/** Starts and ends one request; the one span it made. */
function observe(end: AuditEvent, start: Partial<ObservedStart> = {}, on = telemetry()) {
  on.start({ ...START, ...start }).end(end)
  const spans = sdk.spans()
  expect(spans).toHaveLength(1)
  return spans[0]!
}

describe('createTelemetry', () => {
  test('false is no telemetry', () => {
    expect(createTelemetry(false)).toBeUndefined()
  })

  test('undefined and {} are telemetry on the global API', () => {
    expect(createTelemetry(undefined)).toMatchObject({ start: expect.any(Function), startCall: expect.any(Function) })
    expect(createTelemetry({})).toMatchObject({ start: expect.any(Function), startCall: expect.any(Function) })
  })

  test.each<[string, unknown, string]>([
    ['an unknown option, near a known one', { propagateTraceContxt: true }, 'createSafeFetch: unknown option "telemetry.propagateTraceContxt"; did you mean "telemetry.propagateTraceContext"?'],
    ['an unknown option, near none', { exporter: 'otlp' }, 'createSafeFetch: unknown option "telemetry.exporter"; the options are telemetry.propagateTraceContext, telemetry.tracerProvider, telemetry.meterProvider'],
    ['propagateTraceContext not a boolean', { propagateTraceContext: 'yes' }, 'createSafeFetch: telemetry.propagateTraceContext must be true or false, not a string'],
    ['a tracerProvider without getTracer', { tracerProvider: {} }, 'createSafeFetch: telemetry.tracerProvider must be a TracerProvider (an object with getTracer()), not an object'],
    ['a meterProvider that is a function', { meterProvider: () => undefined }, 'createSafeFetch: telemetry.meterProvider must be a MeterProvider (an object with getMeter()), not a function'],
    ['true', true, 'createSafeFetch: telemetry must be an object, not a boolean'],
    ['null', null, 'createSafeFetch: telemetry must be an object, not null'],
  ])('%s is a TypeError', (_name, options, message) => {
    expect(() => createTelemetry(options as never)).toThrow(new TypeError(message))
  })

  test('without @opentelemetry/api: createTelemetry gives undefined, the safe fetch has no telemetry and still answers, and nothing throws', async () => {
    // A child process in which resolving the package fails, as when it is not installed.
    const hide = `const Module = require('node:module'); const resolve = Module._resolveFilename
      globalThis.asked = []
      Module._resolveFilename = function (request, ...rest) {
        if (request.startsWith('@opentelemetry/')) { globalThis.asked.push(request); throw Object.assign(new Error('Cannot find module ' + request), { code: 'MODULE_NOT_FOUND' }) }
        return resolve.call(this, request, ...rest)
      }`
    const dist = new URL('../dist/', import.meta.url).href
    const script = `import { createTelemetry } from '${dist}telemetry/index.js'
      import { createSafeFetch } from '${dist}index.js'
      const first = createTelemetry({}), second = createTelemetry({ propagateTraceContext: true })
      const fetch = createSafeFetch({ telemetry: {} })
      const reply = await fetch.request({ url: 'https://elsewhere.test/' }, { capsuleId: 'c' })
      console.log(JSON.stringify({ first: first === undefined, second: second === undefined, fetch: fetch.telemetry === undefined, code: reply.error?.code, asked: globalThis.asked }))
      await fetch.close()`
    const dir = mkdtempSync(join(tmpdir(), 'no-otel-'))
    writeFileSync(join(dir, 'hide.cjs'), hide)
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--require', join(dir, 'hide.cjs'), '--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('..', import.meta.url)) }, (error, stdout, stderr) =>
        error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout),
      )
    }).finally(() => rmSync(dir, { recursive: true, force: true }))
    // Asked once per process (the failed load is remembered), and never again.
    expect(JSON.parse(out)).toEqual({ first: true, second: true, fetch: true, code: 'denied', asked: ['@opentelemetry/api'] })
  })
})

describe('request spans', () => {
  test('an allowed 200: a CLIENT span named by its method, HTTP client semconv and capsule-host attributes, status unset', () => {
    const span = observe(event())
    expect(span.name).toBe('GET')
    expect(span.kind).toBe(SpanKind.CLIENT)
    expect(span.status).toEqual({ code: SpanStatusCode.UNSET })
    expect(span.parentSpanContext).toBeUndefined()
    expect(span.attributes).toEqual({
      'http.request.method': 'GET',
      'url.full': 'https://api.test:8443/v1/items?…',
      'server.address': 'api.test',
      'server.port': 8443,
      'http.response.status_code': 200,
      'capsule_host.capsule.id': 'cap-1',
      'capsule_host.request.id': 'cap-1#1',
      'capsule_host.request.kind': 'request',
      'capsule_host.abi': 'capsule-host',
      'capsule_host.decision': 'allowed',
      'capsule_host.decided_by': 'rule:api',
      'capsule_host.address.class': 'unicast',
      'capsule_host.response.bytes': 120,
      'capsule_host.request.bytes': 7,
      'capsule_host.redirects': 1,
    })
  })

  test.each<[string, Partial<AuditEvent>, string, Record<string, unknown>]>([
    ['upstream 500', { status: 500 }, '500', { 'http.response.status_code': 500, 'capsule_host.decision': 'allowed' }],
    ['upstream 404', { status: 404 }, '404', { 'http.response.status_code': 404 }],
    ['denied by the rules', { allowed: false, status: undefined, code: 'denied', decidedBy: 'rules', reason: 'no rule matches the host', addressClass: undefined }, 'denied', { 'capsule_host.decision': 'refused', 'capsule_host.reason': 'no rule matches the host', 'capsule_host.decided_by': 'rules' }],
    ['a blocked address', { allowed: false, status: undefined, code: 'blocked_address', decidedBy: 'address-policy', addressClass: 'private' }, 'blocked_address', { 'capsule_host.address.class': 'private' }],
    ['a reset', { status: undefined, code: 'network' }, 'network', { 'capsule_host.decision': 'allowed' }],
    ['a timeout', { status: undefined, code: 'timeout', phase: 'first_byte' }, 'timeout', { 'capsule_host.timeout.phase': 'first_byte' }],
    ['a quota', { allowed: false, status: undefined, code: 'rate_limited', decidedBy: 'quota:capsule', retryAfterMs: 59_000 }, 'rate_limited', { 'capsule_host.retry_after_ms': 59_000, 'capsule_host.decided_by': 'quota:capsule' }],
  ])('%s: error.type %s, status ERROR', (_name, fields, type, attributes) => {
    const span = observe(event(fields))
    expect(span.attributes['error.type']).toBe(type)
    expect(span.status.code).toBe(SpanStatusCode.ERROR)
    expect(span.attributes).toMatchObject(attributes)
    if (fields.status === undefined) expect(span.attributes).not.toHaveProperty('http.response.status_code')
  })

  test('a 399 is no error; 400 is', () => {
    expect(observe(event({ status: 399 })).status.code).toBe(SpanStatusCode.UNSET)
    sdk.resetSpans()
    expect(observe(event({ status: 400 })).status.code).toBe(SpanStatusCode.ERROR)
  })

  test.each<[string, string | undefined, string, string, string | undefined]>([
    ['a known method', 'DELETE', 'DELETE', 'DELETE', undefined],
    ['QUERY', 'QUERY', 'QUERY', 'QUERY', undefined],
    ['a method semconv does not know', 'PURGE', 'HTTP', '_OTHER', 'PURGE'],
    ['lower case (not a known method as sent)', 'get', 'HTTP', '_OTHER', 'get'],
    ['no method (validation failed)', undefined, 'HTTP', '_OTHER', undefined],
  ])('%s: span %s, http.request.method %s', (_name, method, name, semconv, original) => {
    const span = observe(event({ method }))
    expect(span.name).toBe(name)
    expect(span.attributes['http.request.method']).toBe(semconv)
    expect(span.attributes['http.request.method_original']).toBe(original)
  })

  test.each<[string, string, string, number]>([
    ['https without a port', 'https://api.test/x', 'api.test', 443],
    ['http without a port', 'http://api.test/x?…', 'api.test', 80],
    ['an explicit port', 'http://api.test:8080/', 'api.test', 8080],
    ['an IPv6 literal', 'http://[2001:db8::1]:81/', '2001:db8::1', 81],
  ])('server.address and server.port: %s', (_name, url, address, port) => {
    expect(observe(event({ url })).attributes).toMatchObject({ 'url.full': url, 'server.address': address, 'server.port': port })
  })

  test('a request refused in validation (no method, no URL) is a span without URL or server attributes', () => {
    const span = observe(event({ method: undefined, url: undefined, allowed: false, status: undefined, code: 'invalid_request', decidedBy: 'validation', addressClass: undefined }))
    expect(span.name).toBe('HTTP')
    expect(span.attributes).not.toHaveProperty('url.full')
    expect(span.attributes).not.toHaveProperty('server.address')
    expect(span.attributes['error.type']).toBe('invalid_request')
  })

  test('a stream is a span of kind CLIENT with kind stream and its bytes', () => {
    const span = observe(event({ kind: 'stream', bytesIn: 300_000 }), { kind: 'stream' })
    expect(span.attributes).toMatchObject({ 'capsule_host.request.kind': 'stream', 'capsule_host.response.bytes': 300_000 })
  })

  test('the parent: a Context given as ObservedStart.parent, else the active context, else none', () => {
    const tracer = trace.getTracer('test')
    const outer = tracer.startSpan('outer')
    const given = trace.setSpan(context.active(), outer)
    observe(event(), { parent: given })
    expect(sdk.spans()[0]!.parentSpanContext?.spanId).toBe(outer.spanContext().spanId)
    sdk.resetSpans()
    // Not a Context: the active one is the parent.
    context.with(given, () => observe(event(), { parent: { getValue: 'not a function' } }))
    expect(sdk.spans()[0]!.parentSpanContext?.spanId).toBe(outer.spanContext().spanId)
    sdk.resetSpans()
    observe(event(), { parent: 'a string' })
    expect(sdk.spans()[0]!.parentSpanContext).toBeUndefined()
    outer.end()
  })

  test('end is recorded once; streamOpened after end changes nothing', async () => {
    const observation = telemetry().start(START)
    observation.end(event())
    observation.end(event({ status: 500 }))
    observation.streamOpened()
    expect(sdk.spans()).toHaveLength(1)
    expect(sdk.spans()[0]!.attributes['http.response.status_code']).toBe(200)
  })

  test('an SDK that throws never reaches the request: start, upstreamHeaders, streamOpened and end return normally', () => {
    const throwing = () => {
      throw new Error('broken SDK')
    }
    const broken = telemetry({
      propagateTraceContext: true,
      tracerProvider: { getTracer: () => ({ startSpan: throwing, startActiveSpan: throwing }) },
      meterProvider: { getMeter: throwing },
    })
    const observation = broken.start(START)
    expect(observation.upstreamHeaders()).toBeUndefined()
    expect(() => observation.streamOpened()).not.toThrow()
    expect(() => observation.end(event())).not.toThrow()
    const call = broken.startCall('cap-1', 'main')
    expect(() => call.end(new Error('x'))).not.toThrow()
  })
})

describe('trace context for upstreams', () => {
  test('propagateTraceContext: a W3C traceparent of the request span itself; off (the default): none', () => {
    const on = telemetry({ propagateTraceContext: true }).start(START)
    const headers = on.upstreamHeaders()
    on.end(event())
    const { traceId, spanId } = sdk.spans()[0]!.spanContext()
    expect(headers).toEqual([['traceparent', `00-${traceId}-${spanId}-01`]])
    const off = telemetry().start(START)
    expect(off.upstreamHeaders()).toBeUndefined()
    off.end(event())
  })

  test('the traceparent carries the call span’s trace when the request is its child', () => {
    const call = telemetry().startCall('cap-1', 'main')
    const observation = telemetry({ propagateTraceContext: true }).start({ ...START, parent: call.parent })
    const [[name, value]] = observation.upstreamHeaders()! as [[string, string]]
    observation.end(event())
    call.end()
    const [request, callSpan] = sdk.spans()
    expect(name).toBe('traceparent')
    expect(value.split('-')[1]).toBe(callSpan!.spanContext().traceId)
    expect(request!.parentSpanContext?.spanId).toBe(callSpan!.spanContext().spanId)
  })
})

describe('a span the SDK samples out', () => {
  test('is not exported, still counts in the metrics, and still propagates its trace (flags 00)', async () => {
    const { AlwaysOffSampler, BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = await import('@opentelemetry/sdk-trace-base')
    const exporter = new InMemorySpanExporter()
    const tracerProvider = new BasicTracerProvider({ sampler: new AlwaysOffSampler(), spanProcessors: [new SimpleSpanProcessor(exporter)] })
    const observation = telemetry({ tracerProvider, propagateTraceContext: true }).start(START)
    const headers = observation.upstreamHeaders()
    observation.end(event())
    expect(headers).toEqual([['traceparent', expect.stringMatching(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/)]])
    expect(exporter.getFinishedSpans()).toEqual([])
    expect(pointsOf(await sdk.metric('capsule_host.requests'))).toHaveLength(1)
    await tracerProvider.shutdown()
  })
})

describe('capsule call spans', () => {
  test('capsule.call {export}: INTERNAL, capsule id and export, a child of the active context, its parent holds the span', () => {
    const tracer = trace.getTracer('test')
    const outer = tracer.startSpan('host request')
    const call = context.with(trace.setSpan(context.active(), outer), () => telemetry().startCall('cap-1', 'summarise'))
    expect(trace.getSpan(call.parent as never)?.spanContext().spanId).toMatch(/^[0-9a-f]{16}$/)
    call.end()
    outer.end()
    const span = sdk.spans()[0]!
    expect(span).toMatchObject({ name: 'capsule.call summarise', kind: SpanKind.INTERNAL, status: { code: SpanStatusCode.UNSET } })
    expect(span.attributes).toEqual({ 'capsule_host.capsule.id': 'cap-1', 'capsule_host.export': 'summarise' })
    expect(span.parentSpanContext?.spanId).toBe(outer.spanContext().spanId)
    expect(trace.getSpan(call.parent as never)?.spanContext().spanId).toBe(span.spanContext().spanId)
  })

  test.each<[string, unknown, string]>([
    ['a CapsuleError', new CapsuleError('call_timeout', 'the call took too long'), 'call_timeout'],
    ['another CapsuleError', new CapsuleError('capsule_failed', 'trap'), 'capsule_failed'],
    ['anything else thrown', new TypeError('x'), '_OTHER'],
  ])('a call that failed with %s: error.type %s, status ERROR; ended once', (_name, error, type) => {
    const call = telemetry().startCall('cap-1', 'main')
    call.end(error)
    call.end()
    expect(sdk.spans()).toHaveLength(1)
    expect(sdk.spans()[0]!.attributes['error.type']).toBe(type)
    expect(sdk.spans()[0]!.status).toEqual({ code: SpanStatusCode.ERROR, message: type })
  })
})

describe('request metrics', () => {
  /** The metric attributes of `fields`' event: bounded, never the URL, the server or the capsule id. */
  const attributesOf = (fields: Record<string, unknown>) => ({
    'capsule_host.decision': 'allowed',
    'capsule_host.code': 'none',
    'capsule_host.request.kind': 'request',
    'capsule_host.abi': 'capsule-host',
    'http.request.method': 'GET',
    ...fields,
  })

  test('count and duration by decision and code; quota refusals by decider; open streams up and back to zero', async () => {
    const own = telemetry()
    const ends: Array<[Partial<AuditEvent>, Partial<ObservedStart>?]> = [
      [{}],
      [{}],
      [{ status: 500 }],
      [{ allowed: false, status: undefined, code: 'denied', decidedBy: 'rules', method: 'PURGE', url: 'https://a.test/secret-path' }],
      [{ allowed: false, status: undefined, code: 'rate_limited', decidedBy: 'quota:capsule', retryAfterMs: 10 }],
      [{ allowed: false, status: undefined, code: 'rate_limited', decidedBy: 'quota-store', retryAfterMs: 10 }],
      [{ kind: 'stream' }, { kind: 'stream' }],
    ]
    const observations = ends.map(([, start]) => own.start({ ...START, ...start }))
    observations[6]!.streamOpened()
    expect(pointsOf(await sdk.metric('capsule_host.streams.open'))).toEqual([{ attributes: {}, value: 1 }])
    observations.forEach((observation, i) => observation.end(event(ends[i]![0])))
    expect(pointsOf(await sdk.metric('capsule_host.streams.open'))).toEqual([{ attributes: {}, value: 0 }])

    const expected = [
      { attributes: attributesOf({ 'http.response.status_code': 200 }), value: 2 },
      { attributes: attributesOf({ 'http.response.status_code': 500, 'error.type': '500' }), value: 1 },
      { attributes: attributesOf({ 'capsule_host.decision': 'refused', 'capsule_host.code': 'denied', 'error.type': 'denied', 'http.request.method': '_OTHER' }), value: 1 },
      { attributes: attributesOf({ 'capsule_host.decision': 'refused', 'capsule_host.code': 'rate_limited', 'error.type': 'rate_limited' }), value: 2 },
      { attributes: attributesOf({ 'capsule_host.request.kind': 'stream', 'http.response.status_code': 200 }), value: 1 },
    ]
    const requests = await sdk.metric('capsule_host.requests')
    const durations = await sdk.metric('http.client.request.duration')
    expect(pointsOf(requests)).toEqual(expect.arrayContaining(expected))
    expect(pointsOf(requests)).toHaveLength(expected.length)
    expect(pointsOf(durations)).toEqual(expect.arrayContaining(expected))
    expect(durations?.descriptor.unit).toBe('s')
    // The semconv buckets, in seconds.
    expect((durations?.dataPoints[0]?.value as { buckets: { boundaries: number[] } }).buckets.boundaries).toEqual([0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10])
    expect(pointsOf(await sdk.metric('capsule_host.quota.refusals'))).toEqual(expect.arrayContaining([
      { attributes: { 'capsule_host.decided_by': 'quota:capsule' }, value: 1 },
      { attributes: { 'capsule_host.decided_by': 'quota-store' }, value: 1 },
    ]))
  })
})

describe('a meter provider registered after the telemetry was made', () => {
  test('gets the metrics from then on (the metrics API has no proxy provider)', async () => {
    const early = telemetry()
    early.start(START).end(event({ status: 500 }))
    await sdk.resetMetrics()
    early.start(START).end(event())
    expect(pointsOf(await sdk.metric('capsule_host.requests'))).toEqual([{ attributes: expect.objectContaining({ 'capsule_host.decision': 'allowed' }), value: 1 }])
  })
})

describe('providers given in the options', () => {
  test('tracerProvider and meterProvider are used instead of the globals', async () => {
    const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = await import('@opentelemetry/sdk-trace-base')
    const { MeterProvider } = await import('@opentelemetry/sdk-metrics')
    const exporter = new InMemorySpanExporter()
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
    const reader = new ManualReader()
    const meterProvider = new MeterProvider({ readers: [reader] })
    telemetry({ tracerProvider, meterProvider }).start(START).end(event())
    expect(sdk.spans()).toHaveLength(0)
    expect(exporter.getFinishedSpans().map((span) => span.name)).toEqual(['GET'])
    expect(exporter.getFinishedSpans()[0]!.instrumentationScope).toMatchObject({ name: 'capsule-host', version: expect.stringMatching(/^\d+\.\d+\.\d+/) })
    const { resourceMetrics } = await reader.collect()
    const names = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics.map((metric) => metric.descriptor.name))
    expect(names).toEqual(expect.arrayContaining(['capsule_host.requests', 'http.client.request.duration']))
    await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()])
  })
})

describe('Capsule and CapsuleHttp', () => {
  /** A capsule whose engine, on each call, makes one request through its CapsuleHttp (to a host no rule allows: nothing is dialled). */
  function capsuleOn(fetchTelemetry: false | object, failWith?: CapsuleError) {
    const fetch = createSafeFetch({ telemetry: fetchTelemetry as never })
    const http = new CapsuleHttp(fetch.registerCapsule('unit-capsule'), fetch.telemetry)
    const engine: CapsuleEngine = {
      alive: true,
      async call() {
        await http.request(new TextEncoder().encode(JSON.stringify({ url: 'https://elsewhere.test/' })))
        if (failWith) throw failWith
        return new Uint8Array(0)
      },
      close: async () => undefined,
    }
    const capsule = new Capsule('unit-capsule', engine, new Set(['main']), 1000, () => fetch.close(), http)
    return { capsule, fetch }
  }

  test('each call is a span and the request its engine made through CapsuleHttp is its child', async () => {
    const { capsule, fetch } = capsuleOn({})
    await capsule.call('main')
    await capsule.call('main')
    const spans = sdk.spans()
    expect(spans.map((span) => span.name)).toEqual(['GET', 'capsule.call main', 'GET', 'capsule.call main'])
    expect(spans[0]!.parentSpanContext?.spanId).toBe(spans[1]!.spanContext().spanId)
    expect(spans[2]!.parentSpanContext?.spanId).toBe(spans[3]!.spanContext().spanId)
    expect(spans[1]!.spanContext().spanId).not.toBe(spans[3]!.spanContext().spanId)
    await fetch.close()
  })

  test('a fatal error ends the span with its code; the next call (unloaded) is a span too, with no request', async () => {
    const { capsule } = capsuleOn({}, new CapsuleError('call_timeout', 'took too long'))
    await expect(capsule.call('main')).rejects.toMatchObject({ code: 'call_timeout' })
    await expect(capsule.call('main')).rejects.toMatchObject({ code: 'unloaded' })
    const calls = sdk.spans().filter((span) => span.kind === SpanKind.INTERNAL)
    expect(calls.map((span) => span.attributes['error.type'])).toEqual(['call_timeout', 'unloaded'])
    expect(sdk.spans().filter((span) => span.kind === SpanKind.CLIENT)).toHaveLength(1)
  })

  test('without telemetry (false) the safe fetch has none and a call makes no span', async () => {
    const { capsule, fetch } = capsuleOn(false)
    expect(fetch.telemetry).toBeUndefined()
    await capsule.call('main')
    expect(sdk.spans()).toEqual([])
    await fetch.close()
  })
})
