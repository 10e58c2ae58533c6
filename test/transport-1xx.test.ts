// Integration: interim 1xx responses (102 Processing, 103 Early Hints) never reach the capsule; the final head does.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { SafeFetchOptions } from '../src/index.js'
import { closeAllFetches, ctx, errorOf, ok, testFetch } from './helpers/fetch.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'

afterAll(async () => {
  await closeAllFetches()
  await closeAllServers()
})

/** How the upstream opens its answer before the final head. */
const INTERIM: Record<string, (res: ServerResponse) => void> = {
  none: () => undefined,
  '103': (res) => res.writeEarlyHints({ link: '</a>; rel=preload', 'x-hint': 'early' }),
  '102': (res) => res.writeProcessing(),
  '102 then two 103': (res) => {
    res.writeProcessing()
    res.writeEarlyHints({ link: '</a>; rel=preload' })
    res.writeEarlyHints({ link: '</b>; rel=preload', 'x-hint': 'again' })
  },
}

const FINAL: Record<number, { body: string; headers: Record<string, string> }> = {
  200: { body: 'final body', headers: { 'content-type': 'text/plain', 'x-final': 'yes' } },
  302: { body: 'redirect body', headers: { location: '/final', 'x-final': 'yes' } },
  404: { body: 'not here', headers: { 'content-type': 'text/plain', 'x-final': 'yes' } },
}

/**
 * /answer?interim=K&status=N sends interim K, then status N; /final sends interim K, then 200;
 * /hold?interim=K sends interim K and never a final head.
 */
function handler(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url!, 'http://x')
  const interim = INTERIM[url.searchParams.get('interim') ?? 'none']!
  interim(res)
  if (url.pathname === '/hold') return
  const status = url.pathname === '/final' ? 200 : Number(url.searchParams.get('status'))
  const final = url.pathname === '/final' ? { body: 'arrived', headers: { 'x-final': 'followed' } } : FINAL[status]!
  // A declared length, so the cap can judge the final head before any body byte.
  res.writeHead(status, { ...final.headers, 'content-length': String(Buffer.byteLength(final.body)) })
  res.end(final.body)
}

let server: TestServer
beforeAll(async () => {
  server = await startServer(handler)
})

const fetchWith = (options: SafeFetchOptions = {}) =>
  testFetch({ rules: { host: 'api.test', httpsOnly: false, port: server.port }, maxRedirects: 3, ...options })
const url = (path: string, interim: string) => `http://api.test:${server.port}${path}${path.includes('?') ? '&' : '?'}interim=${encodeURIComponent(interim)}`

interface Seen {
  status: number
  rawHeaders: Array<[string, string]>
  headers: Record<string, string>
  body: string
  finalUrl: string
}

/** One exchange, buffered or streamed, reduced to what the capsule sees. */
async function exchange(mode: 'buffered' | 'streamed', target: string, options: object = {}): Promise<Seen> {
  const fetch = fetchWith()
  if (mode === 'buffered') {
    const reply = ok(await fetch.request({ url: target, options }, ctx()))
    return { status: reply.status, rawHeaders: reply.rawHeaders, headers: reply.headers, body: String(reply.body), finalUrl: reply.meta.finalUrl }
  }
  const stream = await fetch.stream({ url: target, options }, ctx())
  if ('error' in stream) throw new Error(`stream failed: ${JSON.stringify(stream.error)}`)
  const chunks: Uint8Array[] = []
  for await (const chunk of stream) chunks.push(chunk)
  return { status: stream.status, rawHeaders: stream.rawHeaders, headers: stream.headers, body: Buffer.concat(chunks).toString(), finalUrl: stream.finalUrl }
}

/** Header pairs with the date's value blanked (it is the only one that changes between two exchanges). */
const stable = (pairs: Array<[string, string]>) => pairs.map(([name, value]) => [name, name === 'date' ? '' : value])

const INTERIMS = ['103', '102', '102 then two 103']
const rows = (['buffered', 'streamed'] as const).flatMap((mode) =>
  INTERIMS.flatMap((interim) => [200, 302, 404].map((status) => [mode, interim, status] as const)),
)

describe.each(rows)('%s: %s before %i', (mode, interim, status) => {
  test('the capsule sees exactly the final response: status, headers (no hint headers), body', async () => {
    const seen = await exchange(mode, url(`/answer?status=${status}`, interim))
    const control = await exchange(mode, url(`/answer?status=${status}`, 'none'))
    expect(seen.status).toBe(status)
    expect(seen.body).toBe(FINAL[status]!.body)
    expect(stable(seen.rawHeaders)).toEqual(stable(control.rawHeaders))
    expect(seen.headers['x-final']).toBe('yes')
    expect(seen.headers).not.toHaveProperty('link')
    expect(seen.headers).not.toHaveProperty('x-hint')
    expect(seen.rawHeaders.map(([name]) => name)).not.toContain('link')
  })

  if (status === 302) {
    test('with redirect "follow" the redirect is taken from the final head', async () => {
      const before = server.requests.length
      const seen = await exchange(mode, url(`/answer?status=302`, interim), { redirect: 'follow' })
      expect(seen).toMatchObject({ status: 200, body: 'arrived', finalUrl: `http://api.test:${server.port}/final` })
      expect(seen.headers['x-final']).toBe('followed')
      expect(seen.headers).not.toHaveProperty('link')
      expect(server.requests.slice(before).map((r) => new URL(r.url!, 'http://x').pathname)).toEqual(['/answer', '/final'])
    })
  }
})

describe.each(['buffered', 'streamed'] as const)('%s: limits act on the final head', (mode) => {
  test('a 103 then a final head declaring more than the cap is too_large', async () => {
    const target = url('/answer?status=200', '103')
    const fetch = fetchWith()
    const options = { maxResponseBytes: 4 }
    const reply = mode === 'buffered' ? await fetch.request({ url: target, options }, ctx()) : await fetch.stream({ url: target, options }, ctx())
    expect(errorOf(reply)?.code).toBe('too_large')
  })

  test('a 103 then a final body within the cap arrives (the 103 carries no length to misjudge)', async () => {
    const seen = await exchange(mode, url('/answer?status=200', '102 then two 103'), { maxResponseBytes: FINAL[200]!.body.length })
    expect(seen).toMatchObject({ status: 200, body: FINAL[200]!.body })
  })

  test('first_byte keeps waiting for the final head after interim responses', async () => {
    const target = url('/hold', '102 then two 103')
    const fetch = fetchWith()
    const options = { firstByteTimeoutMs: 150 }
    const reply = mode === 'buffered' ? await fetch.request({ url: target, options }, ctx()) : await fetch.stream({ url: target, options }, ctx())
    expect(errorOf(reply)).toMatchObject({ code: 'timeout', phase: 'first_byte' })
  })
})
