// Integration: buffered requests and streams against real HTTP and HTTPS servers on 127.0.0.1.
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createSafeFetch, type ErrorReply } from '../src/index.js'
import { closeAllFetches, ctx, errorOf, ok, tableResolver, testFetch } from './helpers/fetch.js'
import { closeAllServers, readBody, startServer, TEST_CA, type TestServer } from './helpers/servers.js'

afterAll(async () => {
  await closeAllFetches()
  await closeAllServers()
})


const code = (reply: object) => errorOf(reply)?.code

/** Echoes method, path, headers and body as JSON. */
const echo = async (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
  const body = await readBody(req)
  res.setHeader('content-type', 'application/json')
  res.end(
    JSON.stringify({
      method: req.method,
      url: req.url,
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      bodyBase64: body.toString('base64'),
    }),
  )
}

let http: TestServer
let https: TestServer
beforeAll(async () => {
  http = await startServer(echo)
  https = await startServer(echo, { tls: true })
})

const fetchFor = () =>
  testFetch({ rules: [{ host: 'api.test', httpsOnly: false, port: [http.port, https.port] }] })

describe.each([
  ['http', () => `http://api.test:${http.port}`],
  ['https', () => `https://api.test:${https.port}`],
])('%s', (_scheme, base) => {
  test.each(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])('%s with a text body reaches the upstream', async (method) => {
    const reply = ok(await fetchFor().request({ url: `${base()}/v1/items?page=2`, method, body: 'héllo' }, ctx()))
    const seen = JSON.parse(reply.body as string)
    expect(reply.status).toBe(200)
    expect(seen.method).toBe(method)
    expect(seen.url).toBe('/v1/items?page=2')
    expect(Buffer.from(seen.bodyBase64, 'base64').toString()).toBe('héllo')
    expect(seen.headers['content-length']).toBe(String(Buffer.byteLength('héllo')))
    expect(reply.meta.finalUrl).toBe(`${base()}/v1/items?page=2`)
    expect(reply.meta.redirects).toBe(0)
  })

  test('a binary request body (bodyBase64) arrives byte for byte', async () => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
    const reply = ok(await fetchFor().request({ url: `${base()}/bin`, method: 'PUT', bodyBase64: bytes.toString('base64') }, ctx()))
    expect(JSON.parse(reply.body as string).bodyBase64).toBe(bytes.toString('base64'))
  })

  test('the Host header keeps the name and port; accept-encoding is identity', async () => {
    const seen = JSON.parse(ok(await fetchFor().request({ url: `${base()}/h`, headers: { 'accept-encoding': 'gzip' } }, ctx())).body as string)
    expect(seen.headers.host).toBe(`api.test:${base().split(':').pop()}`)
    expect(seen.headers['accept-encoding']).toBe('identity')
  })

  test('lower-case method names are upper-cased', async () => {
    const seen = JSON.parse(ok(await fetchFor().request({ url: `${base()}/m`, method: 'post' }, ctx())).body as string)
    expect(seen.method).toBe('POST')
  })
})

test('repeated request headers (array form) reach the upstream in order', async () => {
  const reply = ok(
    await fetchFor().request(
      { url: `http://api.test:${http.port}/r`, headers: [['X-Tag', 'a'], ['x-tag', 'b'], ['accept', 'text/plain']] },
      ctx(),
    ),
  )
  const raw: string[] = JSON.parse(reply.body as string).rawHeaders
  const tags = raw.flatMap((v, i) => (i % 2 === 0 && v.toLowerCase() === 'x-tag' ? [raw[i + 1]] : []))
  expect(tags).toEqual(['a', 'b'])
})

test('repeated response headers are kept in rawHeaders and joined in headers', async () => {
  const server = await startServer((_req, res) => {
    res.setHeader('set-cookie', ['a=1', 'b=2'])
    res.setHeader('x-one', 'v')
    res.end('ok')
  })
  const reply = ok(await testFetch({ rules: { host: 'api.test', httpsOnly: false, port: server.port } }).request({ url: `http://api.test:${server.port}/` }, ctx()))
  expect(reply.rawHeaders.filter(([n]) => n === 'set-cookie')).toEqual([['set-cookie', 'a=1'], ['set-cookie', 'b=2']])
  expect(reply.headers['set-cookie']).toBe('a=1, b=2')
  expect(reply.headers['x-one']).toBe('v')
})

describe('response bodies', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startServer((req, res) => {
      if (req.url === '/binary') return void res.end(Buffer.from([0, 1, 2, 0xff, 0xfe]))
      if (req.url === '/latin1') return void res.end(Buffer.from([0x63, 0x61, 0x66, 0xe9]))
      res.setHeader('content-length', Buffer.byteLength('plain text ✓'))
      res.end(req.method === 'HEAD' ? undefined : 'plain text ✓')
    })
  })
  const f = () => testFetch({ rules: { host: 'api.test', httpsOnly: false, port: server.port } })

  test('text is the default encoding', async () => {
    const reply = ok(await f().request({ url: `http://api.test:${server.port}/text` }, ctx()))
    expect(reply).toMatchObject({ body: 'plain text ✓', bodyEncoding: 'text' })
  })
  test('binary bodies come back as base64 when asked', async () => {
    const reply = ok(await f().request({ url: `http://api.test:${server.port}/binary`, responseBody: 'base64' }, ctx()))
    expect(reply).toMatchObject({ body: Buffer.from([0, 1, 2, 0xff, 0xfe]).toString('base64'), bodyEncoding: 'base64' })
  })
  test('invalid UTF-8 asked as text is an error that says to use base64', async () => {
    const reply = await f().request({ url: `http://api.test:${server.port}/latin1` }, ctx())
    expect(code(reply)).toBe('invalid_request')
    expect((reply as ErrorReply).error.message).toContain('base64')
  })
  test('HEAD has an empty body', async () => {
    const reply = ok(await f().request({ url: `http://api.test:${server.port}/text`, method: 'HEAD' }, ctx()))
    expect(reply.body).toBe('')
    expect(reply.headers['content-length']).toBe(String(Buffer.byteLength('plain text ✓')))
  })
  test('integrity: a matching sha256 passes, a wrong one is integrity_mismatch', async () => {
    const { createHash } = await import('node:crypto')
    const good = `sha256-${createHash('sha256').update('plain text ✓').digest('base64')}`
    const bad = `sha256-${createHash('sha256').update('other').digest('base64')}`
    const strongest = `${bad.replace('sha256', 'sha256')} sha512-${createHash('sha512').update('plain text ✓').digest('base64')}`
    expect(ok(await f().request({ url: `http://api.test:${server.port}/t`, options: { integrity: good } }, ctx())).status).toBe(200)
    expect(code(await f().request({ url: `http://api.test:${server.port}/t`, options: { integrity: bad } }, ctx()))).toBe('integrity_mismatch')
    // The strongest algorithm decides: the sha512 entry matches, the weaker sha256 one is ignored.
    expect(ok(await f().request({ url: `http://api.test:${server.port}/t`, options: { integrity: strongest } }, ctx())).status).toBe(200)
  })
  test.each([['md5-abc'], ['sha256'], ['sha256-!!'], ['  ']])('integrity %j is invalid_request', async (integrity) => {
    expect(code(await f().request({ url: `http://api.test:${server.port}/t`, options: { integrity } }, ctx()))).toBe('invalid_request')
  })
  test('integrity on a stream is invalid_request (checked on buffered bodies only)', async () => {
    const reply = await f().stream({ url: `http://api.test:${server.port}/t`, options: { integrity: 'sha256-AAAA' } }, ctx())
    expect(code(reply)).toBe('invalid_request')
  })
})

describe('streams', () => {
  test('a stream yields the body in chunks and ends with null', async () => {
    const size = 3 * 1024 * 1024
    const server = await startServer((_req, res) => {
      res.setHeader('x-kind', 'big')
      res.end(Buffer.alloc(size, 7))
    })
    const f = testFetch({ rules: { host: 'api.test', httpsOnly: false, port: server.port } })
    const stream = await f.stream({ url: `http://api.test:${server.port}/big` }, ctx())
    if ('error' in stream) throw new Error(stream.error.message)
    expect(stream.status).toBe(200)
    expect(stream.headers['x-kind']).toBe('big')
    let total = 0
    let chunks = 0
    for (let c = await stream.read(); c !== null; c = await stream.read()) {
      total += c.byteLength
      chunks++
      expect(c.every((b) => b === 7)).toBe(true)
    }
    expect(total).toBe(size)
    expect(chunks).toBeGreaterThan(1)
    expect(await stream.read()).toBeNull()
    stream.close()
  })
})

test('read(maxBytes) returns what has arrived in pieces of at most maxBytes, in order, never empty', async () => {
  const body = Buffer.from(Array.from({ length: 3 * 1024 * 1024 }, (_, i) => (i * 7) & 0xff))
  const server = await startServer((_req, res) => res.end(body))
  const f = testFetch({ rules: { host: 'api.test', httpsOnly: false, port: server.port } })
  // The reader queues one read-ahead (two undici chunks before the first read), then pauses.
  const paused = new Promise<void>((resolve) => {
    const listener = () => {
      unsubscribe('capsule-host:body-reader:paused', listener)
      resolve()
    }
    subscribe('capsule-host:body-reader:paused', listener)
  })
  const stream = await f.stream({ url: `http://api.test:${server.port}/` }, ctx())
  if ('error' in stream) throw new Error(stream.error.message)
  await paused
  const pieces: Uint8Array[] = []
  for (let piece = await stream.read(100_000); piece !== null; piece = await stream.read(100_000)) pieces.push(piece)
  expect(pieces.every((p) => p.byteLength > 0 && p.byteLength <= 100_000)).toBe(true)
  expect(pieces[0]!.byteLength).toBe(100_000) // queued chunks were joined
  expect(Buffer.concat(pieces).equals(body)).toBe(true)
})

describe('invalid requests are invalid_request', () => {
  const url = () => `http://api.test:${http.port}/x`
  test.each<[string, () => unknown]>([
    ['not JSON', () => '{nope'],
    ['not UTF-8', () => new Uint8Array([0x7b, 0xff, 0x7d])],
    ['JSON but not an object', () => '[1,2]'],
    ['url missing', () => ({})],
    ['url of the wrong type', () => ({ url: 42 })],
    ['unknown field', () => ({ url: url(), colour: 'red' })],
    ['unknown option', () => ({ url: url(), options: { retries: 3 } })],
    ['both body and bodyBase64', () => ({ url: url(), body: 'a', bodyBase64: 'YQ==' })],
    ['bodyBase64 not base64', () => ({ url: url(), bodyBase64: 'not base64!' })],
    ['method not a token', () => ({ url: url(), method: 'GE T' })],
    ['method CONNECT', () => ({ url: url(), method: 'CONNECT' })],
    ['method TRACE', () => ({ url: url(), method: 'trace' })],
    ['responseBody unknown', () => ({ url: url(), responseBody: 'hex' })],
    ['redirect unknown', () => ({ url: url(), options: { redirect: 'always' } })],
    ['negative timeout', () => ({ url: url(), options: { timeoutMs: -1 } })],
    ['fractional cap', () => ({ url: url(), options: { maxResponseBytes: 1.5 } })],
    ['headers of the wrong type', () => ({ url: url(), headers: 'accept: */*' })],
    ['header value not a string', () => ({ url: url(), headers: { accept: 1 } })],
    ['header pair of three', () => ({ url: url(), headers: [['a', 'b', 'c']] })],
    ['header name with a space', () => ({ url: url(), headers: { 'x y': '1' } })],
    ['header value with CR LF', () => ({ url: url(), headers: { 'x-a': 'v\r\nx-b: smuggled' } })],
    ['header value with LF', () => ({ url: url(), headers: { 'x-a': 'v\nx' } })],
    ['header value with NUL', () => ({ url: url(), headers: { 'x-a': 'v\u0000' } })],
    ['header name with CR LF', () => ({ url: url(), headers: [['x-a\r\nx-b', 'v']] })],
    ['header value outside Latin-1', () => ({ url: url(), headers: { 'x-a': '✓' } })],
    ['ftp URL', () => ({ url: 'ftp://api.test/x' })],
    ['URL with credentials', () => ({ url: `http://user:pw@api.test:${http.port}/` })],
    ['URL with an encoded slash', () => ({ url: `http://api.test:${http.port}/a%2Fb` })],
    ['2 MiB request', () => JSON.stringify({ url: url(), body: 'x'.repeat(2 * 1024 * 1024) })],
  ])('%s', async (_name, make) => {
    const f = fetchFor()
    const reply = await f.request(make(), ctx())
    expect(code(reply)).toBe('invalid_request')
    expect(http.requests.some((r) => r.url === '/should-never-arrive')).toBe(false)
  })

  test.each([
    'host', 'Host', 'connection', 'content-length', 'transfer-encoding', 'te', 'upgrade', 'keep-alive',
    'trailer', 'expect', 'proxy-authorization', 'Proxy-Connection', 'proxy-anything',
  ])('header %s is set by the host only', async (name) => {
    const before = http.requests.length
    const reply = await fetchFor().request({ url: `http://api.test:${http.port}/h`, headers: { [name]: 'x' } }, ctx())
    expect(code(reply)).toBe('invalid_request')
    expect((reply as ErrorReply).error.message).toContain(name.toLowerCase())
    expect(http.requests.length).toBe(before)
  })

  test('a request of exactly maxRequestBytes is accepted, one byte more is refused', async () => {
    const f = testFetch({
      rules: { host: 'api.test', httpsOnly: false, port: http.port },
      limits: { maxRequestBytes: 200 },
    })
    const base = JSON.stringify({ url: `http://api.test:${http.port}/x`, body: '' })
    const exact = JSON.stringify({ url: `http://api.test:${http.port}/x`, body: 'a'.repeat(200 - base.length) })
    expect(Buffer.byteLength(exact)).toBe(200)
    expect(ok(await f.request(exact, ctx())).status).toBe(200)
    const over = JSON.stringify({ url: `http://api.test:${http.port}/x`, body: 'a'.repeat(201 - base.length) })
    expect(code(await f.request(new TextEncoder().encode(over), ctx()))).toBe('invalid_request')
  })
})

describe('TLS', () => {
  test('a certificate that does not name the host is tls_failed', async () => {
    const f = testFetch({
      rules: { host: 'mismatch.test', port: https.port },
      resolver: tableResolver({ 'mismatch.test': ['127.0.0.1'] }),
    })
    const reply = await f.request({ url: `https://mismatch.test:${https.port}/` }, ctx())
    expect(code(reply)).toBe('tls_failed')
  })
  test('a server whose CA is not trusted is tls_failed', async () => {
    const f = createSafeFetch({
      rules: { host: 'api.test', port: https.port },
      resolver: tableResolver({ 'api.test': ['127.0.0.1'] }),
      addressPolicy: { allow: ['127.0.0.1/32'] },
    })
    try {
      expect(code(await f.request({ url: `https://api.test:${https.port}/` }, ctx()))).toBe('tls_failed')
    } finally {
      await f.close()
    }
  })
  test('plain HTTP spoken to an https URL is tls_failed', async () => {
    const f = testFetch({ rules: { host: 'api.test', port: http.port } })
    expect(code(await f.request({ url: `https://api.test:${http.port}/` }, ctx()))).toBe('tls_failed')
  })
  test('the fixture CA passed as tls.ca is trusted next to the system roots', async () => {
    const f = createSafeFetch({
      rules: { host: 'api.test', port: https.port },
      resolver: tableResolver({ 'api.test': ['127.0.0.1'] }),
      addressPolicy: { allow: ['127.0.0.1/32'] },
      tls: { ca: [TEST_CA] },
    })
    try {
      expect(ok(await f.request({ url: `https://api.test:${https.port}/` }, ctx())).status).toBe(200)
    } finally {
      await f.close()
    }
  })
})

test('a closed port is connect_failed', async () => {
  const server = await startServer(() => undefined)
  const port = server.port
  await server.close()
  const f = testFetch({ rules: { host: 'api.test', httpsOnly: false, port } })
  expect(code(await f.request({ url: `http://api.test:${port}/` }, ctx()))).toBe('connect_failed')
})

test('proxy environment variables are ignored', async () => {
  const saved = { HTTP_PROXY: process.env.HTTP_PROXY, HTTPS_PROXY: process.env.HTTPS_PROXY, http_proxy: process.env.http_proxy }
  // A proxy on a closed loopback port: if it were used, the request would fail to connect.
  process.env.HTTP_PROXY = process.env.HTTPS_PROXY = process.env.http_proxy = 'http://127.0.0.1:9'
  try {
    const f = testFetch({ rules: { host: 'api.test', httpsOnly: false, port: [http.port, https.port] } })
    expect(ok(await f.request({ url: `http://api.test:${http.port}/p` }, ctx())).status).toBe(200)
    expect(ok(await f.request({ url: `https://api.test:${https.port}/p` }, ctx())).status).toBe(200)
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  }
})

test('each capsule has its own connections; releasing one closes them and leaves the other working', async () => {
  const server = await startServer((req, res) => res.end(String(req.socket.remotePort)))
  const f = testFetch({ rules: { host: 'api.test', httpsOnly: false, port: server.port } })
  const url = `http://api.test:${server.port}/`
  const portsOf = async (capsuleId: string, n: number) => {
    const ports = new Set<string>()
    for (let i = 0; i < n; i++) ports.add(ok(await f.request({ url }, ctx(capsuleId))).body as string)
    return ports
  }
  const a = await portsOf('a', 3)
  const b = await portsOf('b', 3)
  expect([...a].filter((p) => b.has(p))).toEqual([]) // b never rode on a's sockets
  const closed = new Set<string>()
  for (const socket of [...server.requests].map((r) => r.socket)) {
    if (socket.destroyed) closed.add(String(socket.remotePort))
    else socket.on('close', () => closed.add(String(socket.remotePort)))
  }
  await f.releaseCapsule('a')
  await new Promise((resolve) => setTimeout(resolve, 50))
  for (const port of a) expect(closed.has(port)).toBe(true)
  for (const port of b) expect(closed.has(port)).toBe(false)
  expect(ok(await f.request({ url }, ctx('b'))).status).toBe(200)
})
