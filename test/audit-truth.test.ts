// Tables: explain() and request() agree on every input, and each failure kind's audit event says who decided and what happened.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer } from 'node:net'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { CapsuleHostError, DECIDING_STAGES, DENY_REASONS, type AuditEvent, type SafeFetchOptions } from '../src/index.js'
import { closeAllFetches, ctx, tableResolver, testFetch } from './helpers/fetch.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'

afterAll(async () => {
  await closeAllFetches()
  await closeAllServers()
})

let server: TestServer
let closedPort: number
async function upstream(req: IncomingMessage, res: ServerResponse) {
  const path = new URL(req.url!, 'http://x').pathname
  if (path === '/latin1') return void res.end(Buffer.from([0xff, 0xfe, 0x41]))
  if (path === '/big') return void res.end('x'.repeat(2048))
  if (path === '/away') return void (res.writeHead(302, { location: 'http://elsewhere.test/' }), res.end())
  if (path === '/loop') return void (res.writeHead(302, { location: '/loop' }), res.end())
  if (path === '/reset') {
    res.writeHead(200, { 'content-length': '100' })
    // Destroyed once the first bytes are on the wire: the body ends 93 bytes short.
    return void res.write('partial', () => res.socket?.destroy())
  }
  if (path === '/hang') return // never answers
  res.end('fine')
}
beforeAll(async () => {
  server = await startServer(upstream)
  // A port that was open a moment ago and is closed now: connecting to it is refused.
  const probe = createServer().listen(0, '127.0.0.1')
  await new Promise((resolve) => probe.once('listening', resolve))
  closedPort = (probe.address() as { port: number }).port
  await new Promise((resolve) => probe.close(resolve))
})

function withEvents(options: SafeFetchOptions) {
  const events: AuditEvent[] = []
  return { fetch: testFetch({ ...options, onRequest: (e) => events.push(e) }), events }
}

const resolver = tableResolver({
  'api.test': ['127.0.0.1'],
  'gated.test': ['127.0.0.1'],
  'intranet.test': ['10.0.0.8'],
  'routed.test': ['127.0.0.1'],
  'slow.test': ['127.0.0.1'],
})

const options = (): SafeFetchOptions => ({
  resolver,
  rules: [
    { id: 'api', host: 'api.test', httpsOnly: false, port: [server.port, closedPort] },
    { host: 'routed.test', httpsOnly: false, port: server.port, routes: [{ path: '/v1/:thing', methods: 'GET' }] },
    { host: 'intranet.test', httpsOnly: false },
    { host: 'gated.test', httpsOnly: false, port: server.port },
    { host: 'slow.test', httpsOnly: false, port: server.port },
    { host: 'secure.test', port: server.port },
  ],
  gates: [
    { name: 'no-gated-post', check: (r) => (r.host === 'gated.test' && r.method === 'POST' ? { allow: false, reason: 'posting is off' } : { allow: true }) },
    { name: 'boom', check: (r) => { if (r.path === '/boom') throw new Error('gate bug'); return { allow: true } } },
    { name: 'slow', check: (r) => (r.host === 'slow.test' ? new Promise(() => undefined) : { allow: true }) },
  ],
  limits: { hostTimeoutMs: 50 },
})

type Row = [name: string, request: () => unknown, expected: Pick<AuditEvent, 'allowed' | 'decidedBy'> & Partial<Pick<AuditEvent, 'code' | 'reason' | 'route' | 'phase'>>]
const rows: Row[] = [
  ['allowed by a rule with an id', () => ({ url: `http://api.test:${server.port}/ok` }), { allowed: true, decidedBy: 'rule:api' }],
  ['allowed by a route', () => ({ url: `http://routed.test:${server.port}/v1/x` }), { allowed: true, decidedBy: 'rule:routed.test', route: '/v1/:thing' }],
  ['no rule for the host', () => ({ url: 'http://nowhere.test/' }), { allowed: false, decidedBy: 'rules', code: 'denied', reason: 'no rule matches the host' }],
  ['the wrong port', () => ({ url: `http://routed.test:${server.port + 1}/v1/x` }), { allowed: false, decidedBy: 'rules', code: 'denied', reason: 'port not allowed' }],
  ['the wrong scheme', () => ({ url: `http://secure.test:${server.port}/` }), { allowed: false, decidedBy: 'rules', code: 'denied', reason: 'scheme not allowed' }],
  ['no route for the path', () => ({ url: `http://routed.test:${server.port}/v2/x` }), { allowed: false, decidedBy: 'rule:routed.test', code: 'denied', reason: 'no route matches the path' }],
  ['a method the route does not allow', () => ({ url: `http://routed.test:${server.port}/v1/x`, method: 'DELETE' }), { allowed: false, decidedBy: 'rule:routed.test', code: 'denied', reason: 'method not allowed on the route' }],
  ['a gate refuses', () => ({ url: `http://gated.test:${server.port}/`, method: 'POST' }), { allowed: false, decidedBy: 'gate:no-gated-post', code: 'denied', reason: 'refused by a gate' }],
  ['a gate throws', () => ({ url: `http://gated.test:${server.port}/boom` }), { allowed: false, decidedBy: 'gate:boom', code: 'denied', reason: 'a gate failed' }],
  ['a gate does not answer', () => ({ url: `http://slow.test:${server.port}/` }), { allowed: false, decidedBy: 'gate:slow', code: 'timeout', phase: 'host', reason: 'a host step did not answer in time' }],
  ['a name resolving to a private address', () => ({ url: 'http://intranet.test/' }), { allowed: false, decidedBy: 'address-policy', code: 'blocked_address', reason: 'blocked address' }],
  ['a metadata literal', () => ({ url: 'http://169.254.169.254/' }), { allowed: false, decidedBy: 'rules', code: 'denied', reason: 'no rule matches the host' }],
  ['an invalid URL', () => ({ url: 'http://exa mple.test/' }), { allowed: false, decidedBy: 'validation', code: 'invalid_request', reason: 'invalid request' }],
  ['an unknown field', () => ({ url: `http://api.test:${server.port}/`, extra: 1 }), { allowed: false, decidedBy: 'validation', code: 'invalid_request', reason: 'invalid request' }],
]

describe('explain() and request() never disagree', () => {
  test.each(rows)('%s', async (_name, request, expected) => {
    const { fetch, events } = withEvents(options())
    const explained = await fetch.explain(request(), ctx())
    await fetch.request(request(), ctx())
    const pick = (o: Partial<AuditEvent>) => ({ allowed: o.allowed, decidedBy: o.decidedBy, code: o.code, reason: o.reason, route: o.route, phase: o.phase })
    expect(events).toHaveLength(1)
    // explain() stops before the send: an allowed request has no code there, and may have one after the send.
    const sent = events[0]!.allowed ? { ...pick(events[0]!), code: undefined } : pick(events[0]!)
    expect(pick(explained)).toEqual(sent)
    expect(pick(explained)).toEqual(pick({ code: undefined, reason: undefined, route: undefined, phase: undefined, ...expected }))
    expect(explained.detail === undefined).toBe(expected.allowed)
  })

  test('a resolver that fails after the rule allowed: allowed, dns_failed, credited to the rule, in both', async () => {
    const { fetch, events } = withEvents({ ...options(), resolver: tableResolver({}) })
    const request = { url: `http://api.test:${server.port}/` }
    const explained = await fetch.explain(request, ctx())
    await fetch.request(request, ctx())
    expect(explained).toMatchObject({ allowed: true, decidedBy: 'rule:api', code: 'dns_failed' })
    expect(events).toEqual([expect.objectContaining({ allowed: true, decidedBy: 'rule:api', code: 'dns_failed' })])
  })
})

describe('every failure kind: allowed, decidedBy and code as decided', () => {
  const api = () => `http://api.test:${server.port}`
  const failures: Array<[string, Partial<SafeFetchOptions>, () => unknown, Partial<AuditEvent>, 'request' | 'stream']> = [
    ['a body that is not UTF-8, after the rule allowed and it was sent', {}, () => ({ url: `${api()}/latin1` }), { allowed: true, decidedBy: 'rule:api', code: 'invalid_request', bytesIn: 3 }, 'request'],
    ['a body over the cap', {}, () => ({ url: `${api()}/big`, options: { maxResponseBytes: 100 } }), { allowed: true, decidedBy: 'rule:api', code: 'too_large' }, 'request'],
    ['connection refused', {}, () => ({ url: `http://api.test:${closedPort}/` }), { allowed: true, decidedBy: 'rule:api', code: 'connect_failed', addressClass: 'loopback' }, 'request'],
    ['no first byte in time', {}, () => ({ url: `${api()}/hang`, options: { firstByteTimeoutMs: 30 } }), { allowed: true, decidedBy: 'rule:api', code: 'timeout', phase: 'first_byte' }, 'request'],
    ['a reset mid-body of a stream', {}, () => ({ url: `${api()}/reset` }), { allowed: true, decidedBy: 'rule:api', code: 'network', bytesIn: 7 }, 'stream'],
    ['an integrity mismatch', {}, () => ({ url: `${api()}/ok`, options: { integrity: `sha256-${Buffer.alloc(32).toString('base64')}` } }), { allowed: true, decidedBy: 'rule:api', code: 'integrity_mismatch' }, 'request'],
    ['a middleware that throws', { middleware: () => { throw new Error('oops') } }, () => ({ url: `${api()}/ok` }), { allowed: true, decidedBy: 'rule:api', code: 'internal' }, 'request'],
    ['a middleware that refuses', { middleware: () => { throw new CapsuleHostError('denied', 'over quota') } }, () => ({ url: `${api()}/ok` }), { allowed: false, decidedBy: 'middleware', code: 'denied', reason: 'refused by middleware', detail: 'over quota' }, 'request'],
    ['a redirect to a host no rule allows', { maxRedirects: 2 }, () => ({ url: `${api()}/away`, options: { redirect: 'follow' } }), { allowed: false, decidedBy: 'rules', code: 'redirect_denied', reason: 'no rule matches the host' }, 'request'],
    ['a redirect the request refuses', {}, () => ({ url: `${api()}/away`, options: { redirect: 'error' } }), { allowed: false, decidedBy: 'request-options', code: 'redirect_denied', reason: 'redirects refused by the request' }, 'request'],
    ['a redirect loop', { maxRedirects: 3 }, () => ({ url: `${api()}/loop`, options: { redirect: 'follow' } }), { allowed: true, decidedBy: 'rule:api', code: 'too_many_redirects' }, 'request'],
    ['a stream read to its end', {}, () => ({ url: `${api()}/ok` }), { allowed: true, decidedBy: 'rule:api', status: 200, bytesIn: 4 }, 'stream'],
  ]
  test.each(failures)('%s', async (_name, extra, request, expected, kind) => {
    const { fetch, events } = withEvents({ ...options(), ...extra })
    if (kind === 'request') await fetch.request(request(), ctx())
    else {
      const stream = await fetch.stream(request(), ctx())
      if (!('error' in stream)) await (async () => { for await (const _ of stream); })().catch(() => undefined)
    }
    expect(events).toEqual([expect.objectContaining(expected)])
    const [event] = events
    expect(DENY_REASONS.includes(event!.reason ?? 'invalid request')).toBe(true)
    expect((DECIDING_STAGES as readonly string[]).includes(event!.decidedBy) || /^(rule|gate):/.test(event!.decidedBy)).toBe(true)
  })

  test('the stream table refuses the fifth stream, decided by the stream table, with no network', async () => {
    const { fetch, events } = withEvents({ ...options(), limits: { maxOpenStreams: 1 } })
    const first = await fetch.stream({ url: `${api()}/ok` }, ctx())
    const before = server.requests.length
    expect(await fetch.stream({ url: `${api()}/ok` }, ctx())).toEqual({ error: { code: 'stream_limit', message: 'this capsule already has 1 open streams; close one first' } })
    expect(server.requests.length).toBe(before)
    expect(events).toEqual([expect.objectContaining({ kind: 'stream', allowed: false, decidedBy: 'stream-table', code: 'stream_limit', reason: 'too many open streams', method: 'GET' })])
    if (!('error' in first)) first.close()
    expect('error' in (await fetch.stream({ url: `${api()}/ok` }, ctx()))).toBe(false)
  })

  test('releasing the capsule records its open stream as cancelled, credited to the rule that allowed it', async () => {
    const { fetch, events } = withEvents(options())
    const open = await fetch.stream({ url: `${api()}/ok` }, ctx('leaving'))
    expect('error' in open).toBe(false)
    await fetch.releaseCapsule('leaving')
    expect(events).toEqual([expect.objectContaining({ kind: 'stream', allowed: true, decidedBy: 'rule:api', code: 'cancelled' })])
  })
})

describe('the audit iterator ends when its owner closes', () => {
  test('safe fetch: for await ends after close(), having yielded what came before', async () => {
    const { fetch } = withEvents(options())
    const seen: string[] = []
    const loop = (async () => {
      for await (const event of fetch.audit) seen.push(event.requestId)
    })()
    await fetch.request({ url: 'http://nowhere.test/' }, ctx('iter'))
    await fetch.close()
    await loop
    expect(seen).toEqual(['iter#1'])
  })
})
