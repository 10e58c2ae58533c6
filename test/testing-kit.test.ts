// capsule-host/testing: every route feature against real requests (safe fetch and a real capsule), what upstreams received, audit, TLS, isolation, bad descriptions, close.
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, request as httpRequest, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request as httpsRequest } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { BufferedResponse, ErrorReply, StreamedResponse } from '../src/index.js'
import { serialInteger } from '../src/testing/certs.js'
import { createTestHost, loadMocks, makeTestCertificates, parseMocks, startUpstreams, type MockDescription, type MockRoute, type TestHost } from '../src/testing/index.js'
import { capsulePath, describeIsolations, fnv1a32 } from './helpers/capsules.js'

const PROBE = capsulePath('probe')
const ctx = { capsuleId: 'kit-test' }
/** A request's own first-byte limit, for the routes held by a 60 s delay (other requests keep the default). */
const QUICK = { firstByteTimeoutMs: 200 }

/** The buffered response of a reply that must have succeeded. */
function ok(reply: BufferedResponse | ErrorReply): BufferedResponse {
  if ('error' in reply) throw new Error(`expected a response, got ${JSON.stringify(reply.error)}`)
  return reply
}
const errorOf = (reply: object) => ('error' in reply ? (reply as ErrorReply).error : undefined)
async function opened(reply: Promise<StreamedResponse | ErrorReply>): Promise<StreamedResponse> {
  const stream = await reply
  if ('error' in stream) throw new Error(`expected a stream, got ${JSON.stringify(stream.error)}`)
  return stream
}

const ROUTES: MockRoute[] = [
  { path: '/text', status: 203, headers: { 'x-one': '1', 'set-cookie': ['a=1', 'b=2'] }, body: 'héllo' },
  { path: '/json', json: { items: [1, 2], none: null } },
  { path: '/json-typed', headers: { 'Content-Type': 'application/vnd.api+json' }, json: [true] },
  { path: '/null', json: null },
  { path: '/bytes', bodyBase64: 'AAEC/w==' },
  { path: '/empty' },
  { path: '/stream', chunks: [{ data: 'first,' }, { dataBase64: 'AP8=' }, { data: 'last' }] },
  { path: '/stream-held', chunks: [{ data: 'first,' }, { data: 'never sent', delayMs: 60_000 }] },
  { path: '/slow', delayMs: 60_000, body: 'never in time' },
  { path: '/held', delayMs: 60_000, chunks: [{ data: 'x' }] },
  { path: '/gone', reset: 'before-headers' },
  { path: '/cut', body: 'abcdefghij', reset: 'mid-body' },
  { path: '/cut-stream', chunks: [{ data: 'part one' }], reset: 'mid-body' },
  { path: '/once', times: 2, body: 'early' },
  { path: '/once', times: 1, body: 'late' },
  { method: 'post', path: '/items/*', status: 201, json: { made: true } },
  { method: '*', path: '/any', body: 'any method' },
  { path: '/search?q=a', body: 'exact query' },
  { path: '/search', body: 'no query match' },
  { path: '/files/*', body: 'a file' },
]

const MOCKS: MockDescription = {
  upstreams: {
    'api.test': { routes: ROUTES },
    'secure.test': { tls: true, routes: [{ method: '*', path: '/*', json: { secure: true } }] },
    'other.test': { routes: [{ method: '*', path: '/', body: 'other' }] },
  },
}

let host: TestHost
beforeAll(async () => {
  host = await createTestHost({ mocks: MOCKS })
})
afterAll(() => host.close())

const get = (path: string, extra: object = {}) => host.fetch.request({ url: host.url('api.test', path), ...extra }, ctx)

describe('routes, through the safe fetch', () => {
  test('status, headers (a list repeats one), a text body as UTF-8 with its length', async () => {
    const reply = ok(await get('/text'))
    expect(reply.status).toBe(203)
    expect(reply.body).toBe('héllo')
    expect(reply.rawHeaders.filter(([name]) => name === 'set-cookie')).toEqual([['set-cookie', 'a=1'], ['set-cookie', 'b=2']])
    expect(reply.headers).toMatchObject({ 'x-one': '1', 'content-length': '6' })
    expect(reply.headers['content-type']).toBeUndefined()
  })

  test.each([
    ['/json', '{"items":[1,2],"none":null}', 'application/json'],
    ['/json-typed', '[true]', 'application/vnd.api+json'],
    ['/null', 'null', 'application/json'],
  ])('json %s: the body is the JSON text, content-type %s', async (path, body, type) => {
    const reply = ok(await get(path))
    expect([reply.status, reply.body, reply.headers['content-type']]).toEqual([200, body, type])
  })

  test('bodyBase64 sends those bytes; no body is an empty 200', async () => {
    expect(ok(await get('/bytes', { responseBody: 'base64' }))).toMatchObject({ body: 'AAEC/w==', bodyEncoding: 'base64', headers: { 'content-length': '4' } })
    expect(ok(await get('/empty'))).toMatchObject({ status: 200, body: '', headers: { 'content-length': '0' } })
  })

  test('chunks: a chunked body of the pieces in order (text and base64 pieces)', async () => {
    const stream = await opened(host.fetch.stream({ url: host.url('api.test', '/stream') }, ctx))
    expect(stream.headers['transfer-encoding']).toBe('chunked')
    expect(stream.headers['content-length']).toBeUndefined()
    const pieces: string[] = []
    for await (const chunk of stream) pieces.push(Buffer.from(chunk).toString('latin1'))
    expect(pieces.join('')).toBe('first,\u0000\u00fflast')
  })

  test('chunks: each piece is flushed as it is written (the first arrives while the next is held by its delay)', async () => {
    const stream = await opened(host.fetch.stream({ url: host.url('api.test', '/stream-held') }, ctx))
    try {
      expect(Buffer.from((await stream.read())!).toString()).toBe('first,')
    } finally {
      stream.close()
    }
  })

  test('delayMs holds the status line: a first-byte limit below it times out', async () => {
    expect(errorOf(await get('/slow', { options: QUICK }))).toMatchObject({ code: 'timeout', phase: 'first_byte' })
  })

  test('reset before-headers: the connection closes with no answer (network)', async () => {
    expect(errorOf(await get('/gone'))).toMatchObject({ code: 'network' })
  })

  test('reset mid-body: half the body, then the connection closes (network, buffered)', async () => {
    expect(errorOf(await get('/cut'))).toMatchObject({ code: 'network' })
  })

  test('reset mid-body with chunks: the head and every chunk arrive, then the read fails (network)', async () => {
    const stream = await opened(host.fetch.stream({ url: host.url('api.test', '/cut-stream') }, ctx))
    expect(stream.status).toBe(200)
    expect(Buffer.from((await stream.read())!).toString()).toBe('part one')
    await expect(stream.read()).rejects.toMatchObject({ code: 'network' })
  })

  test('times: a route answers that many requests, then the next matching route, then 404', async () => {
    const bodies = []
    for (let i = 0; i < 4; i++) bodies.push(ok(await get('/once')).body)
    expect(bodies.slice(0, 3)).toEqual(['early', 'early', 'late'])
    expect(JSON.parse(bodies[3] as string)).toMatchObject({ error: 'no route of api.test matches GET /once' })
  })

  test.each([
    ['POST', '/items/7', 201, '{"made":true}'],
    ['POST', '/items/a/b?x=1', 201, '{"made":true}'],
    ['DELETE', '/any', 200, 'any method'],
    ['PUT', '/any', 200, 'any method'],
    ['GET', '/search?q=a', 200, 'exact query'],
    ['GET', '/search?q=b', 200, 'no query match'],
    ['GET', '/files/a.txt?v=2', 200, 'a file'],
  ])('%s %s matches: %i %s', async (method, path, status, body) => {
    expect(ok(await get(path, { method }))).toMatchObject({ status, body })
  })

  // Boundary rows of matching: a method the route does not name, the prefix itself, a longer name.
  test.each([
    ['GET', '/items/7'],
    ['POST', '/items'],
    ['GET', '/filesystem'],
    ['GET', '/files'],
    ['GET', '/TEXT'],
  ])('%s %s matches no route: 404 with a JSON body naming the request', async (method, path) => {
    const reply = ok(await get(path, { method }))
    expect(reply.status).toBe(404)
    expect(reply.headers['content-type']).toBe('application/json')
    expect(JSON.parse(reply.body as string)).toEqual({ error: `no route of api.test matches ${method} ${path}`, upstream: 'api.test', method, path })
  })
})

describe('what an upstream received', () => {
  test('method, path with query, headers, body as text and as bytes, and the route that answered', async () => {
    const other = host.upstream('other.test')
    const seen = other.received.length
    await host.fetch.request({ url: host.url('other.test', '/?q=1&r=2'), method: 'PUT', headers: [['x-trace', 'a'], ['x-trace', 'b']], bodyBase64: '/wBo' }, ctx)
    await host.fetch.request({ url: host.url('other.test', '/'), method: 'POST', body: 'héllo' }, ctx)
    const [first, second] = other.received.slice(seen)
    expect(first).toMatchObject({ method: 'PUT', path: '/?q=1&r=2', route: 0, body: '\ufffd\u0000h' })
    expect(first!.headers).toMatchObject({ host: `other.test:${other.port}`, 'x-trace': 'a, b', 'content-length': '3' })
    expect(first!.rawHeaders.filter(([name]) => name === 'x-trace')).toEqual([['x-trace', 'a'], ['x-trace', 'b']])
    expect(first!.bodyBytes).toEqual(new Uint8Array([0xff, 0x00, 0x68]))
    expect(second).toMatchObject({ method: 'POST', path: '/', route: 0, body: 'héllo', bodyBytes: new Uint8Array(Buffer.from('héllo')) })
  })

  test('whenReceived waits for a request held by its delay, and url() / origin name the upstream', async () => {
    const api = host.upstream('api.test')
    expect(api.origin).toBe(`http://api.test:${api.port}`)
    expect(host.url('api.test', 'x')).toBe(`http://api.test:${api.port}/x`)
    const count = api.received.length + 1
    const pending = host.fetch.request({ url: host.url('api.test', '/held'), options: QUICK }, ctx)
    await api.whenReceived(count)
    expect(api.received.at(-1)).toMatchObject({ path: '/held', route: ROUTES.findIndex((r) => r.path === '/held') })
    expect(errorOf(await pending)).toMatchObject({ code: 'timeout', phase: 'first_byte' })
  })

  test('upstream() and url() name the known upstreams for an unknown one', () => {
    expect(() => host.upstream('nope.test')).toThrow(new TypeError('no upstream "nope.test"; the upstreams are "api.test", "secure.test", "other.test"'))
    expect(() => host.url('nope.test', '/')).toThrow(TypeError)
  })
})

describe('TLS upstreams', () => {
  test('served over HTTPS with a certificate from the CA the safe fetch trusts', async () => {
    expect(host.url('secure.test', '/a')).toBe(`https://secure.test:${host.upstream('secure.test').port}/a`)
    expect(host.upstreams.ca).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n$/)
    expect(ok(await host.fetch.request({ url: host.url('secure.test', '/a') }, ctx))).toMatchObject({ status: 200, body: '{"secure":true}' })
  })

  /** A plain Node client's handshake with secure.test's server: the error code, or 'ok'. */
  const handshake = (servername: string, ca?: string) =>
    new Promise<string>((resolve) => {
      const req = httpsRequest({ host: '127.0.0.1', port: host.upstream('secure.test').port, servername, headers: { host: servername }, agent: false, ...(ca ? { ca } : {}) }, (res) => {
        res.resume()
        resolve('ok')
      })
      req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message))
      req.end()
    })

  test.each([
    ['secure.test', true, 'ok'],
    ['secure.test', false, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    ['api.test', true, 'ERR_TLS_CERT_ALTNAME_INVALID'],
  ])('a client naming %s, trusting the CA: %s -> %s', async (name, trusts, outcome) => {
    expect(await handshake(name, trusts ? host.upstreams.ca : undefined)).toBe(outcome)
  })

  test('makeTestCertificates: a CA, and a server certificate it issued for every name, valid from an hour ago for a week', () => {
    const now = Date.parse('2026-12-01T12:00:00Z')
    const made = makeTestCertificates(['a.test', 'b.test'], now)
    const ca = new X509Certificate(made.ca)
    const cert = new X509Certificate(made.cert)
    expect([ca.ca, cert.ca]).toEqual([true, false])
    expect(cert.checkIssued(ca) && cert.verify(ca.publicKey)).toBe(true)
    expect(ca.verify(ca.publicKey)).toBe(true)
    expect(cert.subjectAltName).toBe('DNS:a.test, DNS:b.test')
    expect(['a.test', 'b.test', 'c.test', 'sub.a.test'].map((name) => cert.checkHost(name) ?? null)).toEqual(['a.test', 'b.test', null, null])
    expect([cert.validFrom, cert.validTo]).toEqual(['Dec  1 11:00:00 2026 GMT', 'Dec  8 12:00:00 2026 GMT'])
    expect(cert.keyUsage ?? []).toEqual(['1.3.6.1.5.5.7.3.1'])
    expect(made.key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/)
    expect(cert.checkPrivateKey(createPrivateKey(made.key))).toBe(true)
    expect(() => makeTestCertificates([])).toThrow(new TypeError('makeTestCertificates: give at least one name for the server certificate'))
  })

  test('the HTTP upstreams of a description with no TLS upstream make no CA', async () => {
    await using upstreams = await startUpstreams({ upstreams: { 'plain.test': { routes: [] } } })
    expect(upstreams.ca).toBeUndefined()
    expect(upstreams.upstream('plain.test').tls).toBe(false)
  })
})

describe('isolation: only the upstreams are reachable', () => {
  test("every upstream name is allowed on its own port, and on its scheme's default port, by its own rules", async () => {
    for (const name of host.upstreams.names) {
      const loopback = [{ address: '127.0.0.1', class: 'loopback' }]
      expect(await host.fetch.explain({ url: host.url(name, '/') }, ctx)).toMatchObject({ allowed: true, decidedBy: `rule:${name}`, addresses: loopback })
      const origin = host.upstream(name).tls ? `https://${name}/` : `http://${name}/`
      expect(await host.fetch.explain({ url: origin }, ctx)).toMatchObject({ allowed: true, decidedBy: `rule:${name}@default-port`, addresses: loopback })
    }
  })

  test.each([
    ['a name not in the mocks', 'http://elsewhere.test/', 'denied'],
    ['an upstream name on another upstream\'s port', () => `http://api.test:${host.upstream('other.test').port}/`, 'denied'],
    ['the loopback address itself', () => `http://127.0.0.1:${host.upstream('api.test').port}/`, 'denied'],
  ])('%s is refused by the rules, before any lookup', async (_, url, code) => {
    const explained = await host.fetch.explain({ url: typeof url === 'function' ? url() : url }, ctx)
    expect(explained).toMatchObject({ allowed: false, code, decidedBy: 'rules' })
    expect(explained.addresses).toBeUndefined()
  })

  describe('with host rules that allow more, the resolver and the kit\'s gate still refuse', () => {
    let wide: TestHost
    beforeAll(async () => {
      wide = await createTestHost({
        mocks: { upstreams: { 'api.test': { routes: [] } } },
        rules: ['elsewhere.test', 'localhost', '127.0.0.1', '127.0.0.2', '10.0.0.1', '169.254.169.254', '[::1]'].map((name) => ({ host: name, httpsOnly: false })),
      })
    })
    afterAll(() => wide.close())

    test.each([
      ['a name not in the mocks', 'http://elsewhere.test/', { code: 'dns_failed', decidedBy: 'rule:elsewhere.test' }],
      ['localhost (not an upstream name)', 'http://localhost/', { code: 'dns_failed', decidedBy: 'rule:localhost' }],
      ['127.0.0.2 (loopback, not exempted)', 'http://127.0.0.2/', { allowed: false, code: 'denied', decidedBy: 'gate:test-upstreams', detail: '127.0.0.2 is an address; the test host reaches its upstreams by name only' }],
      ['::1 (loopback, not exempted)', 'http://[::1]/', { allowed: false, code: 'denied', decidedBy: 'gate:test-upstreams', detail: '[::1] is an address; the test host reaches its upstreams by name only' }],
      ['10.0.0.1 (private)', 'http://10.0.0.1/', { allowed: false, code: 'denied', decidedBy: 'gate:test-upstreams', detail: '10.0.0.1 is an address; the test host reaches its upstreams by name only' }],
      ['the metadata address', 'http://169.254.169.254/', { allowed: false, code: 'denied', decidedBy: 'gate:test-upstreams', detail: '169.254.169.254 is an address; the test host reaches its upstreams by name only' }],
    ])('%s: %o (explain() connects to nothing)', async (_, url, refusal) => {
      expect(await wide.fetch.explain({ url }, ctx)).toMatchObject(refusal)
    })

    test('the exempted address, 127.0.0.1, named by a host rule, is refused by the kit\'s gate (reached by name only)', async () => {
      expect(await wide.fetch.explain({ url: 'http://127.0.0.1/' }, ctx)).toMatchObject({
        allowed: false,
        code: 'denied',
        decidedBy: 'gate:test-upstreams',
        detail: '127.0.0.1 is an address; the test host reaches its upstreams by name only',
      })
    })
  })

  test('a host rule for an upstream name without a port takes that upstream\'s port and replaces its rule', async () => {
    await using narrow = await createTestHost({ mocks: MOCKS, rules: { host: 'api.test', routes: [{ path: '/json', methods: 'GET' }] } })
    expect(ok(await narrow.fetch.request({ url: narrow.url('api.test', '/json') }, ctx)).status).toBe(200)
    expect(errorOf(await narrow.fetch.request({ url: narrow.url('api.test', '/text') }, ctx))).toMatchObject({ code: 'denied' })
    expect(narrow.audit.map((event) => [event.decidedBy, event.route, event.allowed])).toEqual([
      ['rule:api.test', '/json', true],
      ['rule:api.test', undefined, false],
    ])
  })
})

describe("a mock name on its scheme's default port (a capsule written against the real API)", () => {
  test.each([
    ['http://api.test/json?page=2', 'api.test', '/json?page=2', '{"items":[1,2],"none":null}'],
    ['https://secure.test/a', 'secure.test', '/a', '{"secure":true}'],
  ])('%s reaches the mock on its own port; the audit keeps the URL asked for', async (url, name, path, body) => {
    const events = host.audit.length
    expect(ok(await host.fetch.request({ url }, ctx))).toMatchObject({ status: 200, body, meta: { finalUrl: url } })
    expect(host.upstream(name).received.at(-1)).toMatchObject({ path, headers: { host: `${name}:${host.upstream(name).port}` } })
    expect(host.audit.slice(events)).toEqual([
      expect.objectContaining({ url: url.replace(/\?.*/, (query) => (query ? '?…' : '')), allowed: true, status: 200, decidedBy: `rule:${name}@default-port` }),
    ])
  })

  test.each([
    ['https on a plain upstream (443)', 'https://api.test/json', 'rule api.test allows api.test on port %api.test, not 443'],
    ['http on a TLS upstream (80)', 'http://secure.test/', 'rule secure.test allows secure.test over https only'],
    ['another port of the name', 'http://api.test:1/', 'rule api.test allows api.test on port %api.test, not 1'],
  ])('%s is denied by the rules: %s', async (_, url, because) => {
    const seen = host.upstreams.names.map((name) => host.upstream(name).received.length)
    const reason = because.replace(/%(\S+?),/, (_, name: string) => `${host.upstream(name).port},`)
    expect(errorOf(await host.fetch.request({ url }, ctx))).toEqual({ code: 'denied', message: `GET ${url} is not allowed: ${reason}` })
    expect(host.upstreams.names.map((name) => host.upstream(name).received.length)).toEqual(seen)
  })

  test("a host rule for the name narrows both forms, and a capsule's default-port request reaches the mock", async () => {
    await using narrow = await createTestHost({ mocks: MOCKS, rules: { host: 'api.test', httpsOnly: false, routes: [{ path: '/json' }] } })
    expect(ok(await narrow.fetch.request({ url: 'http://api.test/json' }, ctx)).status).toBe(200)
    expect(errorOf(await narrow.fetch.request({ url: 'http://api.test/text' }, ctx))).toMatchObject({ code: 'denied' })
    const result = await narrow.run(PROBE, 'request', JSON.stringify({ url: 'http://api.test/json' }))
    expect(JSON.parse(result.output)).toMatchObject({ status: 200, body: '{"items":[1,2],"none":null}' })
    expect(result.audit).toEqual([expect.objectContaining({ url: 'http://api.test/json', decidedBy: 'rule:api.test@default-port', route: '/json' })])
  })
})

describe('audit', () => {
  test('host.audit collects every event, allowed or refused, in order', async () => {
    await using fresh = await createTestHost({ mocks: MOCKS })
    await fresh.fetch.request({ url: fresh.url('api.test', '/json') }, ctx)
    await fresh.fetch.request({ url: 'http://elsewhere.test/x?secret=1' }, ctx)
    expect(fresh.audit.map(({ url, allowed, status, code, decidedBy }) => ({ url, allowed, status, code, decidedBy }))).toEqual([
      { url: fresh.url('api.test', '/json'), allowed: true, status: 200, code: undefined, decidedBy: 'rule:api.test' },
      { url: 'http://elsewhere.test/x?…', allowed: false, status: undefined, code: 'denied', decidedBy: 'rules' },
    ])
  })
})

describeIsolations('through a real capsule (probe.wasm), isolation %s', (isolation) => {
  let capsuleHost: TestHost
  beforeAll(async () => {
    capsuleHost = await createTestHost({ mocks: MOCKS, isolation })
  })
  afterAll(() => capsuleHost.close())
  const probe = (name: string, request: object) => capsuleHost.run(PROBE, name, JSON.stringify(request))

  test('request: the capsule gets the scripted reply; the result carries that call\'s events only', async () => {
    const result = await probe('request', { url: capsuleHost.url('api.test', '/json'), responseHeaders: 'object' })
    expect(result.status).toBe('ok')
    expect(JSON.parse(result.output)).toMatchObject({ status: 200, headers: { 'content-type': 'application/json' }, body: '{"items":[1,2],"none":null}' })
    expect(result.audit).toHaveLength(1)
    expect(result.audit[0]).toMatchObject({ url: capsuleHost.url('api.test', '/json'), allowed: true, status: 200, abi: 'capsule-host' })
    const next = await probe('request', { url: capsuleHost.url('secure.test', '/') })
    expect(JSON.parse(next.output)).toMatchObject({ status: 200, body: '{"secure":true}' })
    expect(next.audit.map((event) => event.url)).toEqual([capsuleHost.url('secure.test', '/')])
    expect(capsuleHost.audit.slice(-2)).toEqual([...result.audit, ...next.audit])
  })

  test.each([
    ['status and repeated headers', { url: '/text' }, { status: 203, body: 'héllo', rawHeaders: expect.arrayContaining([['set-cookie', 'a=1'], ['set-cookie', 'b=2'], ['x-one', '1']]) }],
    ['bytes, as base64', { url: '/bytes', responseBody: 'base64' }, { status: 200, body: 'AAEC/w==', bodyEncoding: 'base64' }],
    ['a POST with a body, to a prefix route', { url: '/items/9', method: 'POST', body: '{"name":"x"}' }, { status: 201, body: '{"made":true}' }],
  ])('request, %s: the reply the capsule gets', async (_, { url, ...request }: { url: string; method?: string; body?: string }, reply) => {
    const result = await probe('request', { url: capsuleHost.url('api.test', url), ...request })
    expect(JSON.parse(result.output)).toMatchObject(reply)
    const received = capsuleHost.upstream('api.test').received.at(-1)
    expect(received).toMatchObject({ method: request.method ?? 'GET', path: url, body: request.body ?? '' })
  })

  test('stream: the chunks reach the capsule whole (bytes and FNV-1a of what was scripted)', async () => {
    const result = await probe('stream', { url: capsuleHost.url('api.test', '/stream') })
    const bytes = Buffer.concat([Buffer.from('first,'), Buffer.from([0, 255]), Buffer.from('last')])
    expect(JSON.parse(result.output)).toMatchObject({ status: 200, bytes: bytes.length, fnv1a32: fnv1a32(bytes) })
  })

  test.each([
    ['/gone', 'network'],
    ['/slow', 'timeout'],
  ])('request %s: the capsule gets the wire error %s as a value', async (path, code) => {
    const result = await probe('request', { url: capsuleHost.url('api.test', path), options: QUICK })
    expect(result.status).toBe('ok')
    expect(JSON.parse(result.output).error).toMatchObject({ code })
    expect(result.audit[0]).toMatchObject({ allowed: true, code })
  })

  test('a name not in the mocks is refused to the capsule as denied, and nothing reached any upstream', async () => {
    const before = capsuleHost.upstreams.names.map((name) => capsuleHost.upstream(name).received.length)
    const result = await probe('request', { url: 'http://elsewhere.test/' })
    expect(JSON.parse(result.output).error).toMatchObject({ code: 'denied' })
    expect(result.audit[0]).toMatchObject({ allowed: false, decidedBy: 'rules' })
    expect(capsuleHost.upstreams.names.map((name) => capsuleHost.upstream(name).received.length)).toEqual(before)
  })

  test('a stream cut mid-body fails the call: status failed, the host code, the event', async () => {
    const result = await probe('stream', { url: capsuleHost.url('api.test', '/cut-stream') })
    expect(result).toMatchObject({ status: 'failed', output: '', error: { code: 'capsule_failed', hostCode: 'network' } })
    expect(result.error!.message).toMatch(/^the call to "stream" failed: capsule-host network: /)
    expect(result.audit).toEqual([expect.objectContaining({ kind: 'stream', code: 'network' })])
  })

  test('run() loads a module once per module and options; a missing export or file is a failed result', async () => {
    const compilations = capsuleHost.runtime.compilations
    const echoed = await capsuleHost.run(PROBE, 'echo', 'same module')
    expect([echoed.status, echoed.output]).toEqual(['ok', 'same module'])
    expect(capsuleHost.runtime.compilations).toBe(compilations)
    expect(await capsuleHost.run(PROBE, 'no_such')).toMatchObject({ status: 'failed', error: { code: 'no_such_export' } })
    expect(await capsuleHost.run('/nonexistent/x.wasm', 'echo')).toMatchObject({ status: 'failed', error: { code: 'load_failed' }, audit: [] })
  })
})

const route = (fields: object) => ({ upstreams: { 'api.test': { routes: [{ path: '/x', ...fields }] } } })
const at = 'upstreams["api.test"].routes[0]'

describe('bad descriptions: a TypeError naming the bad field', () => {
  test.each([
    [undefined, 'the description is required'],
    [[], 'the description must be an object such as { "upstreams": { "api.test": { "routes": [...] } } }, not an array'],
    [{ upstream: {} }, 'the description has an unknown field "upstream"; did you mean "upstreams"?'],
    [{ upstreams: [] }, 'upstreams must be an object of host names to upstreams, not an array'],
    [{ upstreams: { 'API.test': { routes: [] } } }, 'upstreams["API.test"] is not a host name: write lower-case labels of letters, digits and hyphens, such as "api.test"'],
    [{ upstreams: { 'a-.test': { routes: [] } } }, 'upstreams["a-.test"] is not a host name: write lower-case labels of letters, digits and hyphens, such as "api.test"'],
    [{ upstreams: { '127.0.0.1': { routes: [] } } }, 'upstreams["127.0.0.1"] is an IP address; name the upstream with a host name such as "api.test"'],
    [{ upstreams: { '[::1]': { routes: [] } } }, 'upstreams["[::1]"] is an IP address; name the upstream with a host name such as "api.test"'],
    [{ upstreams: { 'api.test': {} } }, 'upstreams["api.test"].routes is required'],
    [{ upstreams: { 'api.test': { routes: {} } } }, 'upstreams["api.test"].routes must be a list of routes, not an object'],
    [{ upstreams: { 'api.test': { routes: [], tls: 'yes' } } }, 'upstreams["api.test"].tls must be true or false, not "yes"'],
    [{ upstreams: { 'api.test': { routes: [], tsl: true } } }, 'upstreams["api.test"] has an unknown field "tsl"; did you mean "tls"?'],
    [{ upstreams: { 'api.test': { routes: [{}] } } }, `${at}.path is required`],
    [route({ path: 'items' }), `${at}.path must be a path that starts with "/", such as "/items" or "/items/*", not "items"`],
    [route({ path: '/a b' }), `${at}.path must be a path of URL characters (letters, digits and -._~!$&'()*+,;=:@/?%); percent-encode the others ("/caf%C3%A9", "%20" for a space), not "/a b"`],
    [route({ path: '/a*' }), `${at}.path must be a path with "*" only at its end, after a "/" ("/items/*"), not "/a*"`],
    [route({ path: '/*/x' }), `${at}.path must be a path with "*" only at its end, after a "/" ("/items/*"), not "/*/x"`],
    [route({ stauts: 200 }), `${at} has an unknown field "stauts"; did you mean "status"?`],
    [route({ status: 199 }), `${at}.status must be from 200 to 599, not 199`],
    [route({ status: 600 }), `${at}.status must be from 200 to 599, not 600`],
    [route({ status: 200.5 }), `${at}.status must be a whole number from 200 to 599, not 200.5`],
    [route({ status: '200' }), `${at}.status must be a whole number from 200 to 599, not "200"`],
    [route({ method: 'GE T' }), `${at}.method must be a method such as "GET", or "*", not "GE T"`],
    [route({ method: 5 }), `${at}.method must be a string, not 5`],
    [route({ headers: { 'bad name': 'v' } }), `${at}.headers["bad name"] is not a header name (letters, digits and !#$%&'*+.^_\`|~-)`],
    [route({ headers: { k: 'a\r\nb' } }), `${at}.headers.k must be a header value: Latin-1 text without control characters (no CR or LF), not "a\\r\\nb"`],
    [route({ headers: { k: 'price: 5 €' } }), `${at}.headers.k must be a header value: Latin-1 text without control characters (no CR or LF), not "price: 5 €"`],
    [route({ headers: { k: 5 } }), `${at}.headers.k must be a string or a list of strings, not 5`],
    [route({ headers: { 'Content-Length': '5' } }), `${at}.headers["Content-Length"] is set by the server from the body; leave it out`],
    [route({ headers: { 'transfer-encoding': 'chunked' } }), `${at}.headers["transfer-encoding"] is set by the server from the body; leave it out`],
    [route({ body: 5 }), `${at}.body must be a string, not 5`],
    [route({ body: 'a', json: 1 }), `${at} has "body" and "json"; give at most one of body, json, bodyBase64, chunks`],
    [route({ bodyBase64: 'YQ==', chunks: [] }), `${at} has "bodyBase64" and "chunks"; give at most one of body, json, bodyBase64, chunks`],
    [route({ bodyBase64: '***' }), `${at}.bodyBase64 must be base64 (A-Z, a-z, 0-9, +, /, padded with =), not "***"`],
    [route({ json: () => 1 }), `${at}.json must be a JSON value (no functions, undefined, NaN, Infinity or cycles), not a function`],
    [route({ json: { n: Number.NaN } }), `${at}.json must be a JSON value (no functions, undefined, NaN, Infinity or cycles), not an object`],
    [route({ json: new Date(0) }), `${at}.json must be a JSON value (no functions, undefined, NaN, Infinity or cycles), not an object`],
    [route({ chunks: 'ab' }), `${at}.chunks must be a list of chunks, not "ab"`],
    [route({ chunks: [{}] }), `${at}.chunks[0] needs "data" or "dataBase64"`],
    [route({ chunks: [{ data: 'a', dataBase64: 'YQ==' }] }), `${at}.chunks[0] has both "data" and "dataBase64"; give one`],
    [route({ chunks: [{ data: 'a', delayMs: -1 }] }), `${at}.chunks[0].delayMs must be at least 0, not -1`],
    [route({ chunks: [{ data: 'a', dely: 1 }] }), `${at}.chunks[0] has an unknown field "dely"`],
    [route({ delayMs: 1.5 }), `${at}.delayMs must be a whole number of milliseconds from 0 to 2147483647, not 1.5`],
    [route({ delayMs: 2 ** 31 }), `${at}.delayMs must be at most 2147483647, not 2147483648`],
    [route({ reset: 'after' }), `${at}.reset must be "before-headers" or "mid-body", not "after"`],
    [route({ reset: 'mid-body' }), `${at} resets mid-body but has no body to cut; give body, json, bodyBase64 or chunks`],
    [route({ times: 0 }), `${at}.times must be at least 1, not 0`],
    [route({ status: 204, body: 'a' }), `${at} has a body, but a 204 response has none`],
    [route({ status: 304, chunks: [] }), `${at} has a body, but a 304 response has none`],
  ])('%j -> %s', async (description, message) => {
    expect(() => parseMocks(description)).toThrow(new TypeError(`mock description: ${message}`))
    await expect(startUpstreams(description as MockDescription)).rejects.toThrow(new TypeError(`mock description: ${message}`))
  })

  // The boundary rows that pass: the edges of each range.
  test.each([
    route({ status: 200 }),
    route({ status: 599, delayMs: 0, times: 1 }),
    route({ delayMs: 2 ** 31 - 1 }),
    route({ json: null }),
    route({ json: { deep: [{ a: [1.5, 'x', false] }] } }),
    route({ status: 204 }),
    route({ method: '*', path: '/*' }),
    route({ headers: { 'x-tab': 'a\tb', 'x-latin1': 'café', 'set-cookie': ['a=1', 'b=2'] } }),
    route({ chunks: [], reset: 'mid-body' }),
    { upstreams: {} },
    { upstreams: { localhost: { routes: [] }, 'a.b-c.test': { tls: false, routes: [] } } },
  ])('valid: %j', (description) => {
    expect(parseMocks(description)).toEqual(description)
  })
})

describe('loadMocks: a JSON file, errors naming the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'capsule-host-mocks-'))
  const file = (name: string, text: string) => {
    const path = join(dir, name)
    writeFileSync(path, text)
    return path
  }

  test('a good file is its description', async () => {
    const path = file('good.json', JSON.stringify(MOCKS))
    expect(await loadMocks(path)).toEqual(MOCKS)
  })

  test.each([
    ['bad.json', JSON.stringify(route({ status: 99 })), `${at}.status must be from 200 to 599, not 99`],
    ['notjson.json', '{ "upstreams": ', /^not JSON: /],
  ])('%s -> %s', async (name, text, message) => {
    const path = file(name, text)
    const error = await loadMocks(path).catch((e: unknown) => e as TypeError)
    expect(error).toBeInstanceOf(TypeError)
    expect((error as TypeError).message.slice(path.length + 2)).toMatch(message)
    expect((error as TypeError).message.startsWith(`${path}: `)).toBe(true)
  })

  test('a missing file names the file and the code', async () => {
    await expect(loadMocks(join(dir, 'missing.json'))).rejects.toThrow(new TypeError(`${join(dir, 'missing.json')}: cannot read the mock file (ENOENT)`))
  })

  test('createTestHost takes the path of a mock file', async () => {
    await using fromFile = await createTestHost({ mocks: file('host.json', JSON.stringify(MOCKS)) })
    expect(ok(await fromFile.fetch.request({ url: fromFile.url('other.test', '/') }, ctx)).body).toBe('other')
  })
})

describe('options and close', () => {
  test.each([
    [{ mock: {} }, 'createTestHost: unknown option "mock"; did you mean "mocks"?'],
    [{ isolation: 'threads' }, 'createRuntime: isolation must be "worker", "inline" or "pool", not "threads"'],
    [{ rules: [{ host: 'x.test', bogus: 1 }] }, 'rules[0] (host "x.test"): unknown field "bogus"; a rule has id, host, httpsOnly, port, routes, middleware'],
  ])('%j -> %s', async (options, message) => {
    await expect(createTestHost(options as never)).rejects.toThrow(new TypeError(message))
  })

  test('close() is idempotent, ends a request held by a delay, and leaves no server listening', async () => {
    const closing = await createTestHost({ mocks: MOCKS })
    const api = closing.upstream('api.test')
    expect(api.listening).toBe(true)
    const held = closing.fetch.request({ url: closing.url('api.test', '/slow') }, ctx)
    await api.whenReceived(1)
    const waiting = api.whenReceived(99)
    await Promise.all([closing.close(), closing.close()])
    await closing.close()
    // The safe fetch closes before the servers: the held request is cancelled, not cut.
    expect(errorOf(await held)).toMatchObject({ code: 'cancelled' })
    await expect(waiting).rejects.toThrow('upstream api.test closed before it received 99 requests')
    // The server's own state: a dial could be answered by another process that took the freed port.
    expect(closing.upstreams.names.map((name) => closing.upstream(name).listening)).toEqual([false, false, false])
  })

  test('createTestHost() with no options: no upstreams, no CA, and a capsule still runs', async () => {
    const bare = await createTestHost()
    try {
      expect([bare.upstreams.names, bare.upstreams.ca]).toEqual([[], undefined])
      expect(await bare.run(PROBE, 'echo', 'alone')).toMatchObject({ status: 'ok', output: 'alone', audit: [] })
      // No rule at all: everything is denied by default.
      expect(await bare.fetch.explain({ url: 'http://api.test/' }, ctx)).toMatchObject({ allowed: false, code: 'denied', decidedBy: 'default' })
    } finally {
      await bare.close()
    }
  })

  test('startUpstreams(): close() twice, and Symbol.asyncDispose is the same close', async () => {
    const upstreams = await startUpstreams({ upstreams: { 'a.test': { routes: [] } } })
    const upstream = upstreams.upstream('a.test')
    expect(upstream.listening).toBe(true)
    await upstreams.close()
    await upstreams[Symbol.asyncDispose]()
    expect(upstream.listening).toBe(false)
  })
})

describe('the exemption reaches the upstream servers only (a bystander on another loopback port sees nothing)', () => {
  let bystander: Server
  let port = 0
  let hits = 0
  beforeAll(async () => {
    bystander = createServer((req, res) => {
      hits++
      res.end('bystander')
    })
    await new Promise<void>((resolve) => bystander.listen(0, '127.0.0.1', resolve))
    port = (bystander.address() as AddressInfo).port
  })
  afterAll(() => new Promise<void>((resolve) => bystander.close(() => resolve())))

  /** explain() first (it connects to nothing), so a wrong verdict fails the test before any request is sent. */
  async function refused(on: TestHost, url: string, refusal: object): Promise<void> {
    const before = hits
    expect(await on.fetch.explain({ url }, ctx)).toMatchObject({ allowed: false, ...refusal })
    expect(errorOf(await on.fetch.request({ url }, ctx))).toMatchObject({ code: (refusal as { code: string }).code })
    expect(on.audit.at(-1)).toMatchObject({ allowed: false, ...refusal })
    expect(hits).toBe(before)
  }

  const gate = (detail: string) => ({ code: 'denied', decidedBy: 'gate:test-upstreams', reason: 'refused by a gate', detail })

  test("D1: https on port 80 of a plain upstream (the @default-port rule's port) is refused before any connection", async () => {
    await refused(host, 'https://api.test:80/x', gate('api.test is served over http only'))
    // The other way round, the rules refuse it already (a TLS upstream's rules allow https only).
    await refused(host, 'http://secure.test:443/x', { code: 'denied', decidedBy: 'rules', reason: 'scheme not allowed' })
  })

  describe('D2: host rules that name an upstream with a port, the address, or a wildcard', () => {
    let wide: TestHost
    beforeAll(async () => {
      wide = await createTestHost({
        mocks: { upstreams: { 'api.test': { routes: [{ path: '/x', body: 'mock' }] } } },
        rules: [
          { host: 'api.test', port, httpsOnly: false },
          { host: '127.0.0.1', port, httpsOnly: false },
          { host: '[::ffff:7f00:1]', port, httpsOnly: false },
          { host: '*.test', port: [port, 1], httpsOnly: false },
        ],
      })
    })
    afterAll(() => wide.close())

    test.each([
      ['an upstream name on a port of a rule', () => `http://api.test:${port}/`, () => gate(`api.test is served on port ${wide.upstream('api.test').port} (or 80), not ${port}`)],
      ['the address', () => `http://127.0.0.1:${port}/`, () => gate('127.0.0.1 is an address; the test host reaches its upstreams by name only')],
      ['the address as a number', () => `http://2130706433:${port}/`, () => gate('127.0.0.1 is an address; the test host reaches its upstreams by name only')],
      ['the address in hex', () => `http://0x7f.1:${port}/`, () => gate('127.0.0.1 is an address; the test host reaches its upstreams by name only')],
      ['the address, IPv4-mapped', () => `http://[::ffff:127.0.0.1]:${port}/`, () => gate('[::ffff:7f00:1] is an address; the test host reaches its upstreams by name only')],
      ['an upstream name through a wildcard rule', () => `http://api.test:1/`, () => gate(`api.test is served on port ${wide.upstream('api.test').port} (or 80), not 1`)],
    ])('%s is refused by the gate test-upstreams', async (_, url, refusal) => {
      await refused(wide, url(), refusal())
    })

    test('the upstream itself, on its own port and on port 80, still answers', async () => {
      expect(ok(await wide.fetch.request({ url: wide.url('api.test', '/x') }, ctx)).body).toBe('mock')
      expect(ok(await wide.fetch.request({ url: 'http://api.test/x' }, ctx)).body).toBe('mock')
    })
  })

  // Not run against the old code: there it would have dialled 127.0.0.1:80.
  test("D2: a wildcard host rule that decides an upstream name's default-port request sends it on to the server too", async () => {
    await using wild = await createTestHost({ mocks: MOCKS, rules: { host: '*.test', httpsOnly: false } })
    expect(ok(await wild.fetch.request({ url: 'http://api.test/json' }, ctx))).toMatchObject({ status: 200, body: '{"items":[1,2],"none":null}' })
    expect(wild.audit.at(-1)).toMatchObject({ allowed: true, decidedBy: 'rule:*.test' })
  })

  test('D2: with no upstreams, nothing is exempted: a rule for 127.0.0.1 meets the address policy', async () => {
    await using bare = await createTestHost({ rules: { host: '127.0.0.1', port, httpsOnly: false } })
    await refused(bare, `http://127.0.0.1:${port}/`, { code: 'blocked_address', decidedBy: 'address-policy' })
  })

  test('D7: two host rules for one upstream name are both kept, each with its own ids on both ports', async () => {
    // The first (https only) does not match a plain-HTTP request, so the second decides it.
    await using two = await createTestHost({
      mocks: MOCKS,
      rules: [
        { host: 'api.test', httpsOnly: true, routes: [{ path: '/text' }] },
        { host: 'api.test', httpsOnly: false, routes: [{ path: '/json' }] },
      ],
    })
    for (const url of [two.url('api.test', '/json'), 'http://api.test/json']) expect(ok(await two.fetch.request({ url }, ctx)).status).toBe(200)
    expect(two.audit.map((event) => event.decidedBy)).toEqual(['rule:api.test#2', 'rule:api.test@default-port#2'])
  })

  test('D7: a host rule with its own id keeps it; its default-port rule is <id>@default-port', async () => {
    await using named = await createTestHost({ mocks: MOCKS, rules: { id: 'mine', host: 'api.test' } })
    await named.fetch.request({ url: named.url('api.test', '/json') }, ctx)
    await named.fetch.request({ url: 'http://api.test/json' }, ctx)
    expect(named.audit.map((event) => event.decidedBy)).toEqual(['rule:mine', 'rule:mine@default-port'])
  })
})

describe('D3: the certificate serial is a minimal positive DER INTEGER', () => {
  test.each([
    ['0x00-led', Buffer.alloc(16, 0), [0x40, ...Array(15).fill(0)]],
    ['0xff-led', Buffer.alloc(16, 0xff), [0x7f, ...Array(15).fill(0xff)]],
    ['0x80', Buffer.from([0x80, ...Array(15).fill(1)]), [0x40, ...Array(15).fill(1)]],
  ])('%s random bytes -> 02 10 and a first byte from 0x40 to 0x7f', (_, random, content) => {
    expect([...serialInteger(random)]).toEqual([0x02, 16, ...content])
  })
})

describe('D4: received headers are plain own properties', () => {
  test('a request header named constructor or __proto__ is recorded as sent', async () => {
    await using own = await createTestHost({ mocks: { upstreams: { 'api.test': { routes: [{ path: '/' }] } } } })
    const api = own.upstream('api.test')
    await new Promise<void>((resolve, reject) => {
      const headers = JSON.parse('{"constructor":"x","__proto__":"y","toString":"z"}') as Record<string, string>
      const req = httpRequest({ host: '127.0.0.1', port: api.port, path: '/', agent: false, headers }, (res) => {
        res.resume()
        res.on('end', resolve)
      })
      req.on('error', reject)
      req.end()
    })
    await api.whenReceived(1)
    const { headers } = api.received.at(-1)!
    expect([headers['constructor'], headers['tostring'], Object.hasOwn(headers, '__proto__') ? headers['__proto__'] : 'dropped']).toEqual(['x', 'z', 'y'])
  })

  test('a description header named __proto__ is refused with a message, not dropped', () => {
    const description = JSON.parse('{"upstreams":{"api.test":{"routes":[{"path":"/x","headers":{"__proto__":"v"}}]}}}')
    expect(() => parseMocks(description)).toThrow(new TypeError(`mock description: ${at}.headers.__proto__ cannot be a header name here (JavaScript reads it as the object's prototype)`))
  })
})

describe('D5, D6: names URLs read as addresses, and paths that need percent-encoding', () => {
  test.each(['127.1', '0x7f.1', '2130706433', '1.2.3', 'api.123', 'api.0x1f'])('upstream name %s is refused', (name) => {
    expect(() => parseMocks({ upstreams: { [name]: { routes: [] } } })).toThrow(
      new TypeError(`mock description: upstreams[${JSON.stringify(name)}] is read by URLs as an IPv4 address (its last label is a number); name the upstream with a host name such as "api.test"`),
    )
  })

  test.each(['/café', '/a b', '/a#b', '/a"b', '/a<b>', '/a{b}', '/a|b', '/a\\b', '/a^b', '/a`b', '/a[b]'])('route path %j is refused, asking for percent-encoding', (path) => {
    expect(() => parseMocks(route({ path }))).toThrow(
      new TypeError(`mock description: ${at}.path must be a path of URL characters (letters, digits and -._~!$&'()*+,;=:@/?%); percent-encode the others ("/caf%C3%A9", "%20" for a space), not ${JSON.stringify(path)}`),
    )
  })

  test.each(['/caf%C3%A9', "/a-._~!$&'()+,;=:@/b", '/s?q=a&b=c', '/x/*'])('route path %j is accepted', (path) => {
    expect(parseMocks(route({ path }))).toEqual(route({ path }))
  })
})

describe('D8: close() closes every part even when one fails, then rethrows', () => {
  test('a failed runtime.close() still closes the upstreams', async () => {
    const failing = await createTestHost({ mocks: MOCKS })
    const api = failing.upstream('api.test')
    const closed = api.whenReceived(99)
    closed.catch(() => undefined)
    const runtimeClose = failing.runtime.close.bind(failing.runtime)
    Object.defineProperty(failing.runtime, 'close', { value: async () => { await runtimeClose(); throw new Error('runtime close failed') } })
    await expect(failing.close()).rejects.toThrow('runtime close failed')
    await expect(closed).rejects.toThrow('upstream api.test closed before it received 99 requests')
    expect(failing.upstreams.names.map((name) => failing.upstream(name).listening)).toEqual([false, false, false])
  })
})
