// Integration: redirects come back as-is by default; followed hops are re-checked end to end.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { afterAll, beforeAll, expect, test } from 'vitest'
import type { ErrorReply, SafeFetchOptions } from '../src/index.js'
import { closeAllFetches, ctx, errorOf, ok, tableResolver, testFetch } from './helpers/fetch.js'
import { closeAllServers, readBody, startServer, type TestServer } from './helpers/servers.js'

afterAll(async () => {
  await closeAllFetches()
  await closeAllServers()
})

let server: TestServer
let base: string

/** /to?status=N&location=L redirects; /loop redirects to itself; anything else echoes. */
async function handler(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url!, 'http://x')
  if (url.pathname === '/to') {
    res.statusCode = Number(url.searchParams.get('status') ?? 302)
    const location = url.searchParams.get('location')
    if (location !== null) res.setHeader('location', location)
    return void res.end('redirect body')
  }
  if (url.pathname === '/loop') {
    res.statusCode = 302
    res.setHeader('location', '/loop')
    return void res.end()
  }
  const body = await readBody(req)
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify({ method: req.method, path: req.url, host: req.headers.host, authorization: req.headers.authorization ?? null, cookie: req.headers.cookie ?? null, contentType: req.headers['content-type'] ?? null, body: body.toString() }))
}

beforeAll(async () => {
  server = await startServer(handler)
  base = `http://api.test:${server.port}`
})

const to = (location: string, status = 302) => `${base}/to?status=${status}&location=${encodeURIComponent(location)}`

function fetchWith(options: SafeFetchOptions = {}) {
  return testFetch({
    rules: [
      { host: 'api.test', httpsOnly: false, port: server.port },
      { host: 'other.test', httpsOnly: false, port: server.port },
    ],
    maxRedirects: 5,
    ...options,
  })
}

const codeOf = (reply: object) => errorOf(reply)?.code ?? 'none'

test('by default a 3xx comes back to the capsule as-is', async () => {
  const reply = ok(await fetchWith().request({ url: to('/final') }, ctx()))
  expect(reply.status).toBe(302)
  expect(reply.headers.location).toBe('/final')
  expect(reply.body).toBe('redirect body')
  expect(reply.meta.redirects).toBe(0)
})

test('redirect "error" turns a 3xx into redirect_denied', async () => {
  expect(codeOf(await fetchWith().request({ url: to('/final'), options: { redirect: 'error' } }, ctx()))).toBe('redirect_denied')
})

test('a 3xx without Location is returned even when following', async () => {
  const reply = ok(await fetchWith().request({ url: `${base}/to?status=302`, options: { redirect: 'follow' } }, ctx()))
  expect(reply.status).toBe(302)
})

test('a chain across two allowed hosts is followed, every hop resolved once', async () => {
  const resolver = tableResolver({ 'api.test': ['127.0.0.1'], 'other.test': ['127.0.0.1'] })
  const f = fetchWith({ resolver })
  const chain = to(to(`http://other.test:${server.port}/final`, 301), 307)
  const reply = ok(await f.request({ url: chain, options: { redirect: 'follow' } }, ctx()))
  expect(reply.status).toBe(200)
  expect(JSON.parse(reply.body as string)).toMatchObject({ path: '/final', host: `other.test:${server.port}` })
  expect(reply.meta).toMatchObject({ redirects: 2, finalUrl: `http://other.test:${server.port}/final` })
  expect(resolver.asked).toEqual(['api.test', 'api.test', 'other.test'])
})

test('a hop to a host no rule allows is redirect_denied and is never resolved', async () => {
  const resolver = tableResolver({ 'api.test': ['127.0.0.1'], 'evil.test': ['127.0.0.1'] })
  const before = server.requests.length
  const reply = await fetchWith({ resolver }).request({ url: to(`http://evil.test:${server.port}/steal`), options: { redirect: 'follow' } }, ctx())
  expect(codeOf(reply)).toBe('redirect_denied')
  expect(resolver.asked).not.toContain('evil.test')
  expect(server.requests.length).toBe(before + 1)
})

test('a hop to a name that resolves to a blocked address is blocked_address, before any connection', async () => {
  const resolver = tableResolver({ 'api.test': ['127.0.0.1'], 'other.test': ['10.0.0.7'] })
  const reply = await fetchWith({ resolver }).request({ url: to(`http://other.test:${server.port}/x`), options: { redirect: 'follow' } }, ctx())
  expect(codeOf(reply)).toBe('blocked_address')
  expect((reply as ErrorReply).error.message).not.toContain('10.0.0.7')
})

test.each([
  ['metadata IP literal', 'http://169.254.169.254/latest/meta-data/'],
  ['loopback outside the allowed /32', 'http://127.0.0.2/'],
  ['IPv6 loopback', 'http://[::1]/'],
  ['non-http scheme', 'file:///etc/passwd'],
  ['encoded dot-segment', '/a/%2e%2e/b'],
  ['credentials', 'http://user:pw@api.test/'],
])('a hop to %s is refused as redirect_denied', async (_name, location) => {
  const reply = await fetchWith().request({ url: to(location), options: { redirect: 'follow' } }, ctx())
  expect(codeOf(reply)).toBe('redirect_denied')
})

test('a hop to a blocked IP literal that a rule allows by name is blocked_address', async () => {
  const f = fetchWith({
    rules: [
      { host: 'api.test', httpsOnly: false, port: server.port },
      { host: '127.0.0.2', httpsOnly: false, port: server.port },
    ],
  })
  const reply = await f.request({ url: to(`http://127.0.0.2:${server.port}/`), options: { redirect: 'follow' } }, ctx())
  expect(codeOf(reply)).toBe('blocked_address')
})

test('the redirect cap: exactly maxRedirects hops succeed, one more is too_many_redirects', async () => {
  const two = to(to('/final'))
  expect(ok(await fetchWith().request({ url: two, options: { redirect: 'follow', maxRedirects: 2 } }, ctx())).meta.redirects).toBe(2)
  expect(codeOf(await fetchWith().request({ url: two, options: { redirect: 'follow', maxRedirects: 1 } }, ctx()))).toBe('too_many_redirects')
})

test('a capsule asking for more redirects than the host allows is clamped to the host ceiling', async () => {
  const f = fetchWith({ maxRedirects: 1 })
  expect(codeOf(await f.request({ url: to(to('/final')), options: { redirect: 'follow', maxRedirects: 10 } }, ctx()))).toBe('too_many_redirects')
})

test('with the default host ceiling of 0, follow does not follow', async () => {
  const f = fetchWith({ maxRedirects: undefined })
  expect(codeOf(await f.request({ url: to('/final'), options: { redirect: 'follow' } }, ctx()))).toBe('too_many_redirects')
})

test('a redirect loop is too_many_redirects', async () => {
  expect(codeOf(await fetchWith().request({ url: `${base}/loop`, options: { redirect: 'follow' } }, ctx()))).toBe('too_many_redirects')
})

test('303 turns POST into GET and drops the body', async () => {
  const reply = ok(await fetchWith().request({ url: to('/final', 303), method: 'POST', body: 'data', headers: { 'content-type': 'text/plain' }, options: { redirect: 'follow' } }, ctx()))
  expect(JSON.parse(reply.body as string)).toMatchObject({ method: 'GET', body: '', contentType: null })
})

test.each([301, 302])('%i after POST becomes GET', async (status) => {
  const reply = ok(await fetchWith().request({ url: to('/final', status), method: 'POST', body: 'data', options: { redirect: 'follow' } }, ctx()))
  expect(JSON.parse(reply.body as string)).toMatchObject({ method: 'GET', body: '' })
})

test.each([307, 308])('%i keeps the method and the body', async (status) => {
  const reply = ok(await fetchWith().request({ url: to('/final', status), method: 'PUT', body: 'data', options: { redirect: 'follow' } }, ctx()))
  expect(JSON.parse(reply.body as string)).toMatchObject({ method: 'PUT', body: 'data' })
})

test('credentials are kept on a same-origin hop and dropped on a cross-origin hop', async () => {
  const headers = { authorization: 'Bearer capsule-secret', cookie: 'sid=1' }
  const same = ok(await fetchWith().request({ url: to('/final'), headers, options: { redirect: 'follow' } }, ctx()))
  expect(JSON.parse(same.body as string)).toMatchObject({ authorization: 'Bearer capsule-secret', cookie: 'sid=1' })
  const cross = ok(await fetchWith().request({ url: to(`http://other.test:${server.port}/final`), headers, options: { redirect: 'follow' } }, ctx()))
  expect(JSON.parse(cross.body as string)).toMatchObject({ authorization: null, cookie: null })
})

test('streams follow redirects the same way', async () => {
  const stream = await fetchWith().stream({ url: to('/final'), options: { redirect: 'follow' } }, ctx())
  if ('error' in stream) throw new Error(stream.error.message)
  expect(stream.finalUrl).toBe(`${base}/final`)
  const chunks: Uint8Array[] = []
  for await (const chunk of stream) chunks.push(chunk)
  expect(JSON.parse(Buffer.concat(chunks).toString())).toMatchObject({ path: '/final' })
})
