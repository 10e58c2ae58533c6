// Secrets never reach the capsule: an echoing loopback upstream repeats every injected credential and secret() value, and every byte the capsule gets is searched.
import { gunzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  CapsuleHostError,
  createRuntime,
  createSafeFetch,
  REDACTED,
  respond,
  secret,
  type BufferedResponse,
  type ErrorReply,
  type JsonValue,
  type Middleware,
  type MiddlewareRequest,
  type RequestEvent,
  type Rule,
  type Runtime,
  type SafeFetch,
  type SafeFetchOptions,
  type SecurityGate,
  type StreamedResponse,
} from '../src/index.js'
import { capsulePath } from './helpers/capsules.js'
import { startEchoServer, type Echo, type EchoServer } from './helpers/echo-server.js'
import { closeAllServers } from './helpers/servers.js'

// ---------------------------------------------------------------------------------------------
// The secrets, and how a middleware puts each on the request

const BEARER = 'ghp_R8m2Qx7LwZ4nV9bK3tYcH6pJ1sF5dA0eG2uX'
/** base64 of "capsule-bot:s3cr3t/p4ss+w0rd?~~": has "+" and "=", so its JSON, percent and form spellings differ. */
const BASIC = Buffer.from('capsule-bot:s3cr3t/p4ss+w0rd?~~').toString('base64')
const GITHUB = 'gho_Lm4Np7Qr0St3Uv6Wx9Yz2Ab5Cd8Ef1Gh4Ij'
/** base64 of "svc-robot:Pa55/w0rd+?>>x": has "/". */
const PROXY = Buffer.from('svc-robot:Pa55/w0rd+?>>x').toString('base64')
const COOKIE_A = 'sess-7Hq2LmX9vR4tZp1K'
const COOKIE_B = 'csrf-Zx8Wq3Rt6Yu1Io0P'
const API_KEY = 'ak_live_5d9F2hJ7kL1mN3pQ6rS8tV0wX4yZ'
const QUERY_KEY = 'qk_9Tz4Xb7Nc2Vm5Lk8Jh1Gf3Ds6Aa0Pq'
/** A Telegram-style bot token, for a rewrite to `/bot<TOKEN>/sendMessage` (it has a ":"). */
const BOT = '123456789:AAHfTz4Xb7Nc2Vm5Lk8Jh1Gf3Ds6Aa0Pq'
const BODY_KEY = 'bk_4Fg7Hj2Kl5Zx8Cv1Bn3Mq6Wr9Et0Yu'
/** A tenant's host label, marked secret (lower case: host names are). */
const TENANT = 'tenant-7f3a9c2e41b8d605'
/** Characters up to U+00FF: HTTP sends them as single bytes, JSON as UTF-8 or as \u escapes. */
const LATIN1_KEY = 'clé-secrète-ÿÜñ-5d9F2hJ7kL1mN3'

/** One way a secret gets onto the request, what must never come back, and where the echo had it. */
interface SecretCase {
  readonly name: string
  /** Each value, in each spelling (`spellings`), must be absent from everything the capsule gets. */
  readonly needles: readonly string[]
  /** Runs in the origin middleware, on every hop. */
  readonly inject: (req: MiddlewareRequest) => void
  /** The echo of a request that carried the secret: each place it was now holds the marker. */
  readonly redactedIn: (echo: Echo) => void
}

/** The capsule's URL with `key=<value>` set in its query (idempotent, so a redirect hop sets it once). */
function withKey(url: string, value: string): string {
  const next = new URL(url)
  next.searchParams.set('key', value)
  return next.href
}

/** The capsule's URL under `/bot<TOKEN>` (once: a hop that already has it keeps it). */
function underBot(url: string, token: string): string {
  const next = new URL(url)
  return next.pathname.startsWith('/bot') ? url : `${next.origin}/bot${token}${next.pathname}${next.search}`
}

/** `authorization: <scheme> <credential>`: the whole value and the credential alone are secrets. */
const authorizationCase = (scheme: string, credential: string): SecretCase => ({
  name: `authorization: ${scheme} <${scheme === 'Basic' ? 'b64' : 't'}>`,
  needles: [`${scheme} ${credential}`, credential],
  inject: (req) => req.header('authorization', `${scheme} ${credential}`),
  redactedIn: (echo) => {
    expect(echo.headers.authorization).toBe(REDACTED)
    expect(echo.credentials.authorization).toBe(REDACTED)
  },
})

const CASES: readonly SecretCase[] = [
  authorizationCase('Bearer', BEARER),
  authorizationCase('Basic', BASIC),
  authorizationCase('token', GITHUB),
  {
    name: 'cookie: a=<v>; b=<w>',
    needles: [`a=${COOKIE_A}; b=${COOKIE_B}`, COOKIE_A, COOKIE_B],
    inject: (req) => req.header('cookie', `a=${COOKIE_A}; b=${COOKIE_B}`),
    redactedIn: (echo) => {
      expect(echo.headers.cookie).toBe(REDACTED)
      expect(echo.cookies).toEqual({ a: REDACTED, b: REDACTED })
    },
  },
  {
    name: 'secret() in a header',
    needles: [API_KEY],
    inject: (req) => req.header('x-api-key', secret(API_KEY)),
    redactedIn: (echo) => expect(echo.headers['x-api-key']).toBe(REDACTED),
  },
  {
    name: 'secret() with Latin-1 characters in a header',
    needles: [LATIN1_KEY],
    inject: (req) => req.header('x-api-key', secret(LATIN1_KEY)),
    redactedIn: (echo) => expect(echo.headers['x-api-key']).toBe(REDACTED),
  },
  {
    name: 'secret() in the URL query (setUrl)',
    needles: [QUERY_KEY],
    inject: (req) => req.setUrl(withKey(req.url, secret(QUERY_KEY))),
    redactedIn: (echo) => {
      expect(echo.path).toContain(`key=${REDACTED}`)
      expect(echo.url).toContain(`key=${REDACTED}`)
    },
  },
  {
    name: 'secret() in the URL path (setUrl)',
    needles: [BOT],
    inject: (req) => req.setUrl(underBot(req.url, secret(BOT))),
    redactedIn: (echo) => {
      expect(echo.path.startsWith(`/bot${REDACTED}/`)).toBe(true)
      expect(echo.url).toContain(`/bot${REDACTED}/`)
    },
  },
  {
    name: 'secret() in the body (setBody)',
    needles: [BODY_KEY],
    inject: (req) => req.setBody(JSON.stringify({ key: secret(BODY_KEY), was: Buffer.from(req.body ?? []).toString() })),
    redactedIn: (echo) => expect(JSON.parse(echo.body)).toMatchObject({ key: REDACTED }),
  },
]

const caseNamed = (part: string): SecretCase => CASES.find((kase) => kase.name.includes(part))!

// ---------------------------------------------------------------------------------------------
// Searching what the capsule got

/** The spellings of a value an echo can carry: as is, JSON-escaped (also with \u escapes), percent-encoded, form-encoded. */
function spellings(value: string): string[] {
  const json = JSON.stringify(value).slice(1, -1)
  const ascii = json.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  return [...new Set([value, json, ascii, encodeURIComponent(value), new URLSearchParams({ v: value }).toString().slice(2)])]
}

/** Each needle spelling found in `text`, with a little context, for a failure message that says where. */
function leaks(text: string, needles: readonly string[]): string[] {
  const found: string[] = []
  for (const needle of needles) {
    for (const form of spellings(needle)) {
      for (let at = text.indexOf(form); at >= 0; at = text.indexOf(form, at + 1)) {
        found.push(`${JSON.stringify(form)} at ${at}: …${text.slice(Math.max(0, at - 40), at + form.length + 20)}…`)
      }
    }
  }
  return found
}

function markersIn(text: string): number {
  return text.split(REDACTED).length - 1
}

/** The markers in a header list: each occurrence once (the `headers` object repeats `rawHeaders`). */
function headerMarkers(rawHeaders: ReadonlyArray<readonly [string, string]>): number {
  return rawHeaders.reduce((n, [name, value]) => n + markersIn(name) + markersIn(value), 0)
}

/** What the capsule got, as one searchable string, and how many markers it holds (each replacement once). */
interface View {
  readonly text: string
  readonly markers: number
}

/** A buffered reply: the whole JSON plus the body decoded (base64 to bytes, read as latin1). */
function bufferedView(reply: BufferedResponse | ErrorReply): View & { body?: Buffer } {
  if ('error' in reply) return { text: JSON.stringify(reply), markers: markersIn(reply.error.message) }
  const body =
    reply.bodyEncoding === 'base64'
      ? Buffer.from(reply.body as string, 'base64')
      : Buffer.from(reply.bodyEncoding === 'json' ? JSON.stringify(reply.body) : (reply.body as string), 'utf8')
  const decoded = body.toString('latin1')
  return {
    text: `${JSON.stringify(reply)}\n${decoded}\n${body.toString('utf8')}`,
    markers: markersIn(decoded) + headerMarkers(reply.rawHeaders) + markersIn(reply.meta.finalUrl),
    body,
  }
}

/** A stream read to its end: its head, final URL and every byte, or its start error. */
async function readStream(stream: StreamedResponse | ErrorReply, maxBytes?: number): Promise<View & { body?: Buffer; chunks?: Buffer[] }> {
  if ('error' in stream) return bufferedView(stream)
  const chunks: Buffer[] = []
  for (let chunk = await stream.read(maxBytes); chunk !== null; chunk = await stream.read(maxBytes)) {
    if (maxBytes !== undefined) expect(chunk.byteLength).toBeLessThanOrEqual(maxBytes)
    chunks.push(Buffer.from(chunk))
  }
  const body = Buffer.concat(chunks)
  const head = { handle: stream.handle, status: stream.status, headers: stream.headers, rawHeaders: stream.rawHeaders, finalUrl: stream.finalUrl }
  return {
    text: `${JSON.stringify(head)}\n${body.toString('latin1')}\n${body.toString('utf8')}`,
    markers: headerMarkers(stream.rawHeaders) + markersIn(stream.finalUrl) + markersIn(body.toString('latin1')),
    body,
    chunks,
  }
}

/**
 * The capsule's view and the request's one audit event hold no spelling of any needle, and the
 * event counts exactly the markers the capsule got.
 */
function expectClean(view: View, event: RequestEvent | undefined, needles: readonly string[]): void {
  expect(leaks(view.text, needles), 'a secret reached the capsule').toEqual([])
  expect(event, 'the request has an audit event').toBeDefined()
  expect(leaks(JSON.stringify(event), needles), 'a secret reached the audit event').toEqual([])
  expect(event!.redactions, 'event.redactions counts the markers the capsule got').toBe(view.markers)
}

// ---------------------------------------------------------------------------------------------
// Safe fetches on loopback

const fetches: SafeFetch[] = []
const runtimes: Runtime[] = []
afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.close()))
  await Promise.all(fetches.map((f) => f.close()))
  await closeAllServers()
})

/** A safe fetch where every name resolves to 127.0.0.1 and only that address is allowed; its events are kept. */
function loopbackFetch(options: SafeFetchOptions): { fetch: SafeFetch; events: RequestEvent[]; lastEvent: () => RequestEvent | undefined } {
  const events: RequestEvent[] = []
  const fetch = createSafeFetch({
    resolver: async () => ['127.0.0.1'],
    addressPolicy: { unsafeAllow: ['127.0.0.1/32'] },
    maxRedirects: 3,
    ...options,
    onRequest: (event) => events.push(event),
  })
  fetches.push(fetch)
  return { fetch, events, lastEvent: () => events.at(-1) }
}

const ctx = { capsuleId: 'leak-test' }

/** Marks each hop for the echo (`x-hop`), then puts the case's secret on the request. */
const injecting = (kase: SecretCase): Middleware => (c, next) => {
  c.req.header('x-hop', String(c.req.hop))
  kase.inject(c.req)
  return next()
}

let echo: EchoServer
beforeAll(async () => {
  echo = await startEchoServer({ splitOn: CASES.flatMap((kase) => kase.needles) })
})

const echoRule = (middleware: Middleware, extra: Partial<Rule> = {}): Rule => ({ host: 'api.test', httpsOnly: false, port: echo.port, middleware, ...extra })
const base = () => `http://api.test:${echo.port}`
const CAPSULE_BODY = 'hello from the capsule'

/** One request's outcome: what the capsule got, and its event. */
async function buffered(fetch: ReturnType<typeof loopbackFetch>, request: object) {
  const before = fetch.events.length
  const reply = await fetch.fetch.request(request, ctx)
  expect(fetch.events.length - before, 'one event per request').toBe(1)
  return { reply, view: bufferedView(reply), event: fetch.lastEvent() }
}

async function streamed(fetch: ReturnType<typeof loopbackFetch>, request: object, maxBytes?: number) {
  const before = fetch.events.length
  const stream = await fetch.fetch.stream(request, ctx)
  const view = await readStream(stream, maxBytes)
  expect(fetch.events.length - before, 'one event per stream, at its end').toBe(1)
  return { stream, view, event: fetch.lastEvent() }
}

function okReply(reply: BufferedResponse | ErrorReply): BufferedResponse {
  if ('error' in reply) throw new Error(`expected a response, got ${JSON.stringify(reply.error)}`)
  return reply
}

const echoOfBody = (body: Buffer | undefined): Echo => JSON.parse(body!.toString('utf8')) as Echo

/** The byte offsets of a stream split: 0 (just before a needle) to the longest needle's length (just after it). */
const offsetsOf = (kase: SecretCase) => Array.from({ length: Math.max(...kase.needles.map((n) => Buffer.byteLength(n))) + 1 }, (_, k) => k)

// ---------------------------------------------------------------------------------------------

for (const kase of CASES) describe(`${kase.name}: the echo never shows it`, () => {
  let fetch: ReturnType<typeof loopbackFetch>
  let asJson: ReturnType<typeof loopbackFetch>
  beforeAll(() => {
    fetch = loopbackFetch({ rules: echoRule(injecting(kase)) })
    // A global middleware wraps the origin one: it answers with the upstream's parsed JSON.
    asJson = loopbackFetch({ rules: echoRule(injecting(kase)), middleware: async (_c, next) => (await next()).json() as JsonValue })
  })
  const request = (query: string, extra: object = {}) => ({ url: `${base()}/v1/echo?${query}`, method: 'POST', body: CAPSULE_BODY, ...extra })

  test.each(['text', 'base64'] as const)('buffered echo as %s: headers, URL and body echoed, response headers echoed', async (responseBody) => {
    const { reply, view, event } = await buffered(fetch, request('mode=echo', { responseBody }))
    const ok = okReply(reply)
    expect(ok).toMatchObject({ status: 200, bodyEncoding: responseBody })
    kase.redactedIn(echoOfBody(view.body))
    expect(ok.rawHeaders.some(([name, value]) => name.startsWith('x-echo-') && value.includes(REDACTED))).toBe(true)
    // The upstream got the real secret: the capsule's view is scrubbed, not the request.
    expect(leaks(echo.last.body.toString(), kase.needles)).not.toEqual([])
    expectClean(view, event, kase.needles)
    expect(event).toMatchObject({ allowed: true, status: 200 })
  })

  test('buffered echo as JSON with \\u escapes (as Python writes it)', async () => {
    const { reply, view, event } = await buffered(fetch, request('mode=echo&json=ascii'))
    expect(okReply(reply).status).toBe(200)
    kase.redactedIn(echoOfBody(view.body))
    expectClean(view, event, kase.needles)
  })

  test('a middleware answering with await res.json(): the JSON value is scrubbed, keys and strings', async () => {
    const { reply, view, event } = await buffered(asJson, request('mode=echo'))
    const ok = okReply(reply)
    expect(ok.bodyEncoding).toBe('json')
    kase.redactedIn(ok.body as unknown as Echo)
    expectClean(view, event, kase.needles)
  })

  test('an error page (500) quoting the URL, the headers and the body', async () => {
    const { reply, view, event } = await buffered(fetch, request('mode=error'))
    expect(okReply(reply).status).toBe(500)
    expect(view.body!.toString()).toContain(REDACTED)
    expectClean(view, event, kase.needles)
  })

  test('a redirect not followed: its Location carries the secret (percent- and form-encoded)', async () => {
    const { reply, view, event } = await buffered(fetch, request('mode=redirect'))
    const ok = okReply(reply)
    expect(ok.status).toBe(302)
    expect(ok.headers.location).toContain(REDACTED)
    expectClean(view, event, kase.needles)
  })

  test('a redirect followed to a Location that carries the secret: meta.finalUrl is scrubbed', async () => {
    const { reply, view, event } = await buffered(fetch, request('mode=redirect', { options: { redirect: 'follow', maxRedirects: 2 } }))
    const ok = okReply(reply)
    expect(ok.meta.redirects).toBe(1)
    expect(ok.meta.finalUrl.startsWith(`${base()}/landing/`)).toBe(true)
    expectClean(view, event, kase.needles)
  })

  test('a redirect followed as a stream: head, final URL and bytes', async () => {
    const { view, event } = await streamed(fetch, request('mode=redirect', { options: { redirect: 'follow', maxRedirects: 2 } }))
    expect(view.body).toBeDefined()
    kase.redactedIn(echoOfBody(view.body))
    expectClean(view, event, kase.needles)
  })

  test.each(offsetsOf(kase))('streamed echo split at offset %i of every occurrence: read() and read(7)', async (k) => {
    for (const maxBytes of [undefined, 7]) {
      const { view, event } = await streamed(fetch, request(`mode=stream&split=${k}`), maxBytes)
      expect(view.body).toBeDefined()
      kase.redactedIn(echoOfBody(view.body))
      expectClean(view, event, kase.needles)
    }
  })
})

describe('the split streams really arrive split', () => {
  test('with no secret in force, read() hands out the upstream chunks as written (never merged)', async () => {
    // x-plain is no credential header: the value is echoed and split on, but not a secret.
    const { fetch } = loopbackFetch({ rules: echoRule((c, next) => (c.req.header('x-plain', `Bearer ${BEARER}`), next())) })
    for (const k of [0, 1, 7, 20]) {
      const stream = await fetch.stream({ url: `${base()}/v1/echo?mode=stream&split=${k}` }, ctx)
      const view = await readStream(stream)
      expect(leaks(view.text, [BEARER]).length).toBeGreaterThan(0)
      const ends = new Set<number>()
      let at = 0
      for (const chunk of view.chunks!) ends.add((at += chunk.length))
      expect(echo.last.chunkEnds.length).toBeGreaterThan(2)
      for (const end of echo.last.chunkEnds) expect(ends.has(end), `a chunk ends at ${end}`).toBe(true)
    }
  })
})

describe('proxy-authorization', () => {
  const PROXY_VALUE = `Basic ${PROXY}`
  const needles = [PROXY_VALUE, PROXY]

  test('set by middleware on a request to the upstream: refused as a host-only header, nothing sent, nothing shown', async () => {
    const { fetch, lastEvent } = loopbackFetch({ rules: echoRule((c, next) => (c.req.header('proxy-authorization', PROXY_VALUE), next())) })
    const before = echo.requests.length
    const reply = await fetch.request({ url: `${base()}/v1/echo` }, ctx)
    expect(reply).toMatchObject({ error: { message: 'internal error in host middleware' } })
    expect(echo.requests.length).toBe(before)
    expectClean(bufferedView(reply), lastEvent(), needles)
  })

  test.each(['request', 'stream'] as const)('a middleware that answers for the upstream (a mock proxy, %s) echoes it: scrubbed', async (kind) => {
    const mockProxy: Middleware = (c) => {
      c.req.header('proxy-authorization', PROXY_VALUE)
      return respond({
        status: 407,
        headers: { 'proxy-authenticate': `Basic realm="${c.req.headers['proxy-authorization']}"`, 'x-echo-credential': PROXY },
        body: JSON.stringify({ headers: c.req.headers, credential: PROXY }),
      })
    }
    const fetch = loopbackFetch({ rules: echoRule(mockProxy) })
    const { view, event } = kind === 'request' ? await buffered(fetch, { url: `${base()}/v1/echo` }) : await streamed(fetch, { url: `${base()}/v1/echo` })
    expect(JSON.parse(view.body!.toString())).toEqual({ headers: { 'proxy-authorization': REDACTED }, credential: REDACTED })
    expect(view.markers).toBe(4)
    expectClean(view, event, needles)
  })
})

describe('meta.finalUrl after a followed redirect to "" or "#frag" names the capsule URL, never the rewritten one', () => {
  const rewrites = CASES.filter((kase) => kase.name.includes('setUrl'))
  const combos = rewrites.flatMap((kase) => ['', '#frag'].map((location) => ({ kase, location })))

  test.for(combos.map((combo) => [`${combo.kase.name}, Location ${JSON.stringify(combo.location)}`, combo] as const))('%s', async ([, { kase, location }]) => {
    const fetch = loopbackFetch({ rules: echoRule(injecting(kase)) })
    const url = `${base()}/v1/echo?mode=redirect&location=${encodeURIComponent(location)}`
    const { reply, view, event } = await buffered(fetch, { url, options: { redirect: 'follow', maxRedirects: 2 } })
    const ok = okReply(reply)
    expect(ok.meta).toMatchObject({ redirects: 1, finalUrl: url })
    kase.redactedIn(echoOfBody(view.body))
    expectClean(view, event, kase.needles)
    const stream = await streamed(fetch, { url, options: { redirect: 'follow', maxRedirects: 2 } })
    expect((stream.stream as StreamedResponse).finalUrl).toBe(url)
    expectClean(stream.view, stream.event, kase.needles)
  })
})

describe('refusals of a URL middleware rewrote to /bot<TOKEN>/sendMessage name the capsule URL', () => {
  const toBot = (host: string | (() => string) = 'api.test'): Middleware => (c, next) => {
    const url = new URL(c.req.url)
    const to = typeof host === 'string' ? host : host()
    if (url.pathname === '/send') c.req.setUrl(`http://${to}:${echo.port}/bot${secret(BOT)}/sendMessage${url.search}`)
    return next()
  }
  const noBots: SecurityGate = {
    name: 'no-bots',
    // A gate's reason may quote the URL: it is host-side detail, never the capsule's message.
    check: (req) => (req.path.startsWith('/bot') ? { allow: false, reason: `refusing ${req.url}` } : { allow: true }),
  }
  const refusals: Array<{ name: string; code: string; options: () => SafeFetchOptions }> = [
    { name: 'the rule\'s routes refuse the rewritten path', code: 'denied', options: () => ({ rules: echoRule(toBot(), { routes: [{ path: '/send' }] }) }) },
    { name: 'a gate refuses the rewritten path', code: 'denied', options: () => ({ rules: echoRule(toBot()), gates: [noBots] }) },
    { name: 'the rewrite goes to a host no rule allows', code: 'denied', options: () => ({ rules: echoRule(toBot('bots.test')) }) },
    {
      // A tenant's own host can be a secret too (secret() on the label): it must not name it either.
      name: 'the rewrite goes to a secret tenant host that does not resolve',
      code: 'dns_failed',
      options: () => ({
        rules: [echoRule(toBot(() => `${secret(TENANT)}.gone.test`)), { host: '*.gone.test', httpsOnly: false, port: echo.port }],
        resolver: async (name: string) => {
          if (name.endsWith('.gone.test')) throw Object.assign(new Error(`ENOTFOUND ${name}`), { code: 'ENOTFOUND' })
          return ['127.0.0.1']
        },
      }),
    },
    {
      name: 'the rewrite goes to a host that resolves to a blocked address',
      code: 'blocked_address',
      options: () => ({
        rules: [echoRule(toBot('internal.test')), { host: 'internal.test', httpsOnly: false, port: echo.port }],
        resolver: async (name: string) => (name === 'internal.test' ? ['10.0.0.9'] : ['127.0.0.1']),
      }),
    },
  ]
  const rows = refusals.flatMap((r) => (['request', 'stream'] as const).map((kind) => [`${r.name} (${kind})`, { ...r, kind }] as const))

  test.for(rows)('%s', async ([, { code, options, kind }]) => {
    const fetch = loopbackFetch(options())
    const before = echo.requests.length
    const capsuleUrl = `${base()}/send`
    const { view, event } = kind === 'request' ? await buffered(fetch, { url: capsuleUrl }) : await streamed(fetch, { url: capsuleUrl })
    const error = JSON.parse(view.text) as ErrorReply
    expect(error.error.code).toBe(code)
    expect(error.error.message).toContain(capsuleUrl)
    expect(error.error.message).not.toContain('/bot')
    expect(echo.requests.length).toBe(before)
    expectClean(view, event, [BOT, TENANT])
    expect(event).toMatchObject({ url: capsuleUrl, code })
  })
})

describe('redirect_denied after a rewrite to /bot<TOKEN>/sendMessage: the message never shows the token', () => {
  /** Rewrites the capsule's /send (only) to the bot path, keeping the query that tells the echo where to redirect. */
  const toBot: Middleware = (c, next) => {
    const url = new URL(c.req.url)
    if (url.pathname === '/send') c.req.setUrl(`${url.origin}/bot${secret(BOT)}/sendMessage${url.search}`)
    return next()
  }
  const fetchOf = () => loopbackFetch({ rules: echoRule(toBot, { routes: [{ path: '/send' }, { path: '/:bot/sendMessage' }] }) })
  const redirecting = (location: string, loop = false) => `${base()}/send?mode=redirect&location=${encodeURIComponent(location)}${loop ? '&loop=1' : ''}`

  const rows: Array<{ name: string; location: () => string; code: string; names: () => string }> = [
    { name: 'a relative Location under the rewritten path that no route allows', location: () => 'next', code: 'redirect_denied', names: () => `${base()}/next` },
    { name: 'an absolute Location to a host no rule allows', location: () => `http://nowhere.test:${echo.port}/landing`, code: 'redirect_denied', names: () => `http://nowhere.test:${echo.port}/landing` },
    { name: 'a scheme-relative Location to a host no rule allows', location: () => `//nowhere.test:${echo.port}/landing`, code: 'redirect_denied', names: () => `http://nowhere.test:${echo.port}/landing` },
    { name: 'a Location relative to the rewritten path that climbs to a path no route allows', location: () => '../elsewhere', code: 'redirect_denied', names: () => `${base()}/elsewhere` },
    { name: 'a Location "" that loops', location: () => '', code: 'too_many_redirects', names: () => `${base()}/send?…` },
  ]
  const kinds = rows.flatMap((row) => (['request', 'stream'] as const).map((kind) => [`${row.name} (${kind})`, { ...row, kind }] as const))

  test.for(kinds)('%s', async ([, { location, code, names, kind }]) => {
    const fetch = fetchOf()
    const request = { url: redirecting(location(), code === 'too_many_redirects'), options: { redirect: 'follow', maxRedirects: 2 } }
    const { view, event } = kind === 'request' ? await buffered(fetch, request) : await streamed(fetch, request)
    const error = JSON.parse(view.text) as ErrorReply
    expect(error.error.code).toBe(code)
    expect(error.error.message).toContain(names())
    expect(error.error.message).not.toContain('/bot')
    expectClean(view, event, [BOT])
  })

  test.each(['request', 'stream'] as const)('an absolute Location to a host no rule allows that repeats the rewritten path (%s): the token is replaced and counted', async (kind) => {
    const fetch = fetchOf()
    const request = { url: redirecting(`http://nowhere.test:${echo.port}/bot${BOT}/sendMessage`), options: { redirect: 'follow', maxRedirects: 2 } }
    const { view, event } = kind === 'request' ? await buffered(fetch, request) : await streamed(fetch, request)
    const error = JSON.parse(view.text) as ErrorReply
    expect(error.error.code).toBe('redirect_denied')
    expect(error.error.message).toContain(`http://nowhere.test:${echo.port}/bot${REDACTED}/sendMessage`)
    expectClean(view, event, [BOT])
  })
})

describe('error messages a middleware writes', () => {
  const bearer = caseNamed('Bearer')

  test('a CapsuleHostError quoting the injected token: replaced and counted', async () => {
    const fetch = loopbackFetch({
      rules: echoRule((c) => {
        bearer.inject(c.req)
        throw new CapsuleHostError('denied', `the token ${BEARER} is revoked`)
      }),
    })
    const { reply, view, event } = await buffered(fetch, { url: `${base()}/v1/echo` })
    expect(reply).toEqual({ error: { code: 'denied', message: `the token ${REDACTED} is revoked` } })
    expectClean(view, event, bearer.needles)
  })

  test.each(['request', 'stream'] as const)('a CapsuleHostError passing on the upstream error page that echoes the credential (%s)', async (kind) => {
    const fetch = loopbackFetch({
      rules: echoRule(async (c, next) => {
        bearer.inject(c.req)
        const res = await next()
        if (res.status >= 500) throw new CapsuleHostError('network', `upstream failed with ${res.status}: ${res.rawHeaders.find(([n]) => n === 'x-echo-authorization')?.[1]}`)
        return res
      }),
    })
    const request = { url: `${base()}/v1/echo?mode=error` }
    const { view, event } = kind === 'request' ? await buffered(fetch, request) : await streamed(fetch, request)
    const error = JSON.parse(view.text) as ErrorReply
    expect(error.error).toEqual({ code: 'network', message: `upstream failed with 500: ${REDACTED}` })
    expectClean(view, event, bearer.needles)
  })

  test('a plain Error quoting the token: the capsule gets internal, the event keeps a scrubbed error', async () => {
    const fetch = loopbackFetch({
      rules: echoRule((c) => {
        bearer.inject(c.req)
        throw new Error(`cannot refresh ${BEARER}`)
      }),
    })
    const { reply, view, event } = await buffered(fetch, { url: `${base()}/v1/echo` })
    expect(reply).toMatchObject({ error: { message: 'internal error in host middleware' } })
    expect(event?.error?.message).toBe(`cannot refresh ${REDACTED}`)
    expectClean(view, event, bearer.needles)
  })
})

describe('a credential header set by assignment with a capitalised name (c.req.headers.Authorization = ...)', () => {
  const needles = [`Bearer ${BEARER}`, BEARER]
  const assigning: Middleware = (c, next) => {
    c.req.headers.Authorization = `Bearer ${BEARER}`
    return next()
  }

  test.each(['request', 'stream'] as const)('the upstream gets it as authorization, the capsule never sees it (%s)', async (kind) => {
    const fetch = loopbackFetch({ rules: echoRule(assigning) })
    const request = { url: `${base()}/v1/echo` }
    const { view, event } = kind === 'request' ? await buffered(fetch, request) : await streamed(fetch, request)
    expect(echo.requests.at(-1)!.headers.authorization).toBe(`Bearer ${BEARER}`)
    expectClean(view, event, needles)
    expect(echoOfBody(view.body).headers.authorization).toBe(REDACTED)
  })
})

describe('a compressed answer (the upstream ignores accept-encoding: identity, as httpbin /gzip does)', () => {
  /** The body as the capsule can read it: gunzipped when it is gzip, as its content-encoding says. */
  const decoded = (view: View & { body?: Buffer }): string => {
    const body = view.body
    if (body === undefined) return view.text
    return body[0] === 0x1f && body[1] === 0x8b ? `${view.text}\n${gunzipSync(body).toString('latin1')}` : view.text
  }

  for (const mode of ['gzip', 'gzip-repeated', 'gzip-transfer']) {
    for (const kase of [caseNamed('Bearer'), caseNamed('secret() in a header')]) test(`${mode}, ${kase.name}: the decoded body never shows it`, async () => {
      const fetch = loopbackFetch({ rules: echoRule(injecting(kase)) })
      const { view, event } = await buffered(fetch, { url: `${base()}/v1/echo?mode=${mode}`, responseBody: 'base64' })
      expect(leaks(decoded(view), kase.needles), 'a secret reached the capsule inside a gzip body').toEqual([])
      expectClean(view, event, kase.needles)
      expect(event?.code).toBe('network')
      const stream = await streamed(fetch, { url: `${base()}/v1/echo?mode=${mode}` })
      expect(leaks(decoded(stream.view), kase.needles), 'a secret reached the capsule inside a gzip stream').toEqual([])
    })
  }
})

describe('through a real capsule (probe, worker isolation)', () => {
  let runtime: Runtime
  let events: RequestEvent[]
  let probe: Awaited<ReturnType<Runtime['load']>>
  const bearer = caseNamed('Bearer')
  const path = caseNamed('URL path')
  beforeAll(async () => {
    const fetch = loopbackFetch({
      rules: echoRule((c, next) => {
        c.req.header('x-hop', String(c.req.hop))
        bearer.inject(c.req)
        path.inject(c.req)
        return next()
      }),
    })
    events = fetch.events
    runtime = createRuntime({ fetch: fetch.fetch, isolation: 'worker' })
    runtimes.push(runtime)
    probe = await runtime.load({ wasm: capsulePath('probe'), id: 'leak-probe' })
  })
  const needles = [...bearer.needles, ...path.needles]

  test.each(['text', 'base64'] as const)('http_request (%s): the output the capsule hands back never shows a secret', async (responseBody) => {
    for (const mode of ['echo', 'error', 'redirect']) {
      const before = events.length
      const out = (await probe.call('request', JSON.stringify({ url: `${base()}/v1/echo?mode=${mode}`, method: 'POST', body: CAPSULE_BODY, responseBody }))).text()
      const reply = JSON.parse(out) as BufferedResponse
      const view = bufferedView(reply)
      expect(leaks(out, needles)).toEqual([])
      expect(view.markers).toBeGreaterThan(0)
      expect(events.length - before).toBe(1)
      expectClean(view, events.at(-1), needles)
      if (mode === 'echo') {
        bearer.redactedIn(echoOfBody(view.body))
        path.redactedIn(echoOfBody(view.body))
      }
    }
  })

  test.each([0, 3, 11])('http_stream_start and http_stream_read, split at offset %i: every chunk the capsule reads', async (k) => {
    const before = events.length
    const [start] = (await probe.call('hold_streams', { request: { url: `${base()}/v1/echo?mode=stream&split=${k}` }, count: 1 })).json<Array<Record<string, unknown>>>()
    expect(start).toMatchObject({ status: 200 })
    const chunks: Buffer[] = []
    for (;;) {
      const chunk = (await probe.call('read_handle', String(start!.handle))).bytes()
      if (chunk.byteLength === 0) break
      chunks.push(Buffer.from(chunk))
    }
    const body = Buffer.concat(chunks)
    const text = `${JSON.stringify(start)}\n${body.toString('latin1')}`
    expect(leaks(text, needles)).toEqual([])
    bearer.redactedIn(echoOfBody(body))
    path.redactedIn(echoOfBody(body))
    expect(events.length - before).toBe(1)
    const markers = headerMarkers(start!.rawHeaders as Array<[string, string]>) + markersIn(body.toString('latin1'))
    expectClean({ text, markers }, events.at(-1), needles)
  })

  test('a refused rewrite: the error the capsule gets names its own URL', async () => {
    const out = (await probe.call('request', JSON.stringify({ url: `${base()}/v1/echo?mode=redirect&location=${encodeURIComponent(`http://nowhere.test:${echo.port}/x`)}`, options: { redirect: 'follow' } }))).text()
    expect(leaks(out, needles)).toEqual([])
    expect(JSON.parse(out)).toMatchObject({ error: { code: 'redirect_denied', message: expect.stringContaining(`http://nowhere.test:${echo.port}/x`) } })
  })
})
