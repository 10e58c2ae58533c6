// Integration: names are gated before DNS, resolved once, every address checked, the checked one dialled.
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { SafeFetchOptions } from '../src/index.js'
import { closeAllFetches, ctx, errorOf, ok, tableResolver, testFetch } from './helpers/fetch.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'
import { createServer, type Server } from 'node:http'

afterAll(async () => {
  await closeAllFetches()
  await closeAllServers()
})


let server: TestServer
beforeAll(async () => {
  server = await startServer((req, res) => res.end(`served by ${req.socket.localAddress}`))
})
const url = (host = 'api.test', path = '/') => `http://${host}:${server.port}${path}`

function withResolver(table: Parameters<typeof tableResolver>[0], options: SafeFetchOptions = {}) {
  const resolver = tableResolver(table)
  const fetch = testFetch({ rules: [{ host: 'api.test', httpsOnly: false, port: server.port }], resolver, ...options })
  return { resolver, fetch }
}

test('a host no rule allows is never passed to the resolver', async () => {
  const { resolver, fetch } = withResolver({ 'api.test': ['127.0.0.1'], 'secret.internal': ['127.0.0.1'] })
  const reply = await fetch.request({ url: url('secret.internal') }, ctx())
  expect(errorOf(reply)?.code).toBe('denied')
  expect(resolver.asked).toEqual([])
  const explained = await fetch.explain({ url: url('secret.internal') }, ctx())
  expect(explained).toEqual({ allowed: false, code: 'denied', decidedBy: 'rules', reason: 'no rule matches the host', detail: 'no rule allows host secret.internal' })
  expect(resolver.asked).toEqual([])
})

test('with nothing configured every request is denied, and nothing is resolved', async () => {
  const resolver = tableResolver({ 'api.test': ['127.0.0.1'] })
  const fetch = testFetch({ resolver })
  expect(await fetch.explain({ url: url() }, ctx())).toEqual({
    allowed: false,
    code: 'denied',
    decidedBy: 'default',
    reason: 'nothing is configured',
    detail: 'no rule, policy or gate is configured, so nothing is allowed',
  })
  expect(errorOf(await fetch.request({ url: url() }, ctx()))?.code).toBe('denied')
  expect(resolver.asked).toEqual([])
})

test('the resolver is asked once per request', async () => {
  const { resolver, fetch } = withResolver({ 'api.test': ['127.0.0.1'] })
  ok(await fetch.request({ url: url() }, ctx()))
  ok(await fetch.request({ url: url() }, ctx()))
  expect(resolver.asked).toEqual(['api.test', 'api.test'])
})

test('an IP-literal URL is not passed to the resolver', async () => {
  const { resolver, fetch } = withResolver({}, { rules: { host: '127.0.0.1', httpsOnly: false, port: server.port } })
  expect(ok(await fetch.request({ url: url('127.0.0.1') }, ctx())).status).toBe(200)
  expect(resolver.asked).toEqual([])
})

describe('DNS rebinding', () => {
  let second: Server
  let secondPort: number
  beforeAll(async () => {
    // A second upstream on 127.0.0.2, the same port number is not needed: rules list both ports.
    second = createServer((req, res) => res.end(`served by ${req.socket.localAddress}`))
    await new Promise<void>((resolve) => second.listen(server.port, '127.0.0.2', resolve))
    secondPort = server.port
  })
  afterAll(() => new Promise<void>((resolve) => second.close(() => resolve())))

  test('a policy that checks the answer and the connection share one resolution', async () => {
    // Answers alternate: the first call says 127.0.0.1, any later call 127.0.0.2.
    let calls = 0
    const resolver = tableResolver({ 'rebind.test': () => (calls++ === 0 ? ['127.0.0.1'] : ['127.0.0.2']) })
    const fetch = testFetch({
      resolver,
      addressPolicy: { allow: ['127.0.0.1/32', '127.0.0.2/32'] },
      policy: async ({ resolve }) => (await resolve()).every((a) => a === '127.0.0.1'),
    })
    const reply = ok(await fetch.request({ url: `http://rebind.test:${secondPort}/` }, ctx()))
    expect(reply.body).toBe('served by 127.0.0.1')
    expect(resolver.asked).toEqual(['rebind.test'])
  })

  test('each request dials exactly the address its own resolution returned', async () => {
    let calls = 0
    const resolver = tableResolver({ 'rebind.test': () => (calls++ % 2 === 0 ? ['127.0.0.1'] : ['127.0.0.2']) })
    const fetch = testFetch({
      resolver,
      addressPolicy: { allow: ['127.0.0.1/32', '127.0.0.2/32'] },
      rules: { host: 'rebind.test', httpsOnly: false, port: secondPort },
    })
    const bodies: string[] = []
    for (let i = 0; i < 4; i++) bodies.push(ok(await fetch.request({ url: `http://rebind.test:${secondPort}/` }, ctx())).body as string)
    expect(bodies).toEqual(['served by 127.0.0.1', 'served by 127.0.0.2', 'served by 127.0.0.1', 'served by 127.0.0.2'])
    expect(resolver.asked).toHaveLength(4)
  })

  test('a rebinding answer that turns private is blocked on the request that gets it', async () => {
    let calls = 0
    const resolver = tableResolver({ 'rebind.test': () => (calls++ === 0 ? ['127.0.0.1'] : ['127.0.0.2']) })
    const fetch = testFetch({ resolver, rules: { host: 'rebind.test', httpsOnly: false, port: secondPort } })
    expect(ok(await fetch.request({ url: `http://rebind.test:${secondPort}/` }, ctx())).body).toBe('served by 127.0.0.1')
    expect(errorOf(await fetch.request({ url: `http://rebind.test:${secondPort}/` }, ctx()))?.code).toBe('blocked_address')
  })
})

describe('answers', () => {
  test.each<[string, string[], string]>([
    ['one blocked address among allowed ones', ['127.0.0.1', '10.0.0.1'], 'blocked_address'],
    ['a blocked address first', ['192.168.1.1', '127.0.0.1'], 'blocked_address'],
    ['metadata address', ['169.254.169.254'], 'blocked_address'],
    ['IPv4-mapped loopback', ['::ffff:127.0.0.1'], 'blocked_address'],
    ['NAT64 of a private address', ['64:ff9b::a00:1'], 'blocked_address'],
    ['IPv6 loopback', ['::1'], 'blocked_address'],
    ['empty answer', [], 'dns_failed'],
    ['not an address', ['not-an-ip'], 'dns_failed'],
    ['non-canonical IPv4 spelling', ['0x7f.0.0.1'], 'dns_failed'],
    ['IPv6 with a zone', ['fe80::1%lo'], 'dns_failed'],
  ])('%s is %s, and no connection is made', async (_name, answer, expected) => {
    const before = server.connections
    const { fetch } = withResolver({ 'api.test': answer })
    const reply = await fetch.request({ url: url() }, ctx())
    expect(errorOf(reply)?.code).toBe(expected)
    expect(server.connections).toBe(before)
  })

  test('the capsule is not told which private address a name resolved to', async () => {
    const { fetch } = withResolver({ 'api.test': ['10.1.2.3'] })
    const reply = await fetch.request({ url: url() }, ctx())
    expect(errorOf(reply)?.message).not.toContain('10.1.2.3')
  })

  test('a resolver that throws is dns_failed', async () => {
    const { fetch } = withResolver({})
    expect(errorOf(await fetch.request({ url: url() }, ctx()))?.code).toBe('dns_failed')
  })

  test.each([
    ['throws before returning a promise', () => {
      throw new Error('resolver exploded')
    }],
    ['returns a rejected promise', () => Promise.reject(new Error('resolver exploded'))],
  ])('a resolver that %s is dns_failed, its message kept from the capsule', async (_name, resolver) => {
    const fetch = testFetch({ rules: [{ host: 'api.test', httpsOnly: false, port: server.port }], resolver })
    const error = errorOf(await fetch.request({ url: url() }, ctx()))
    expect(error?.code).toBe('dns_failed')
    expect(error?.message).not.toContain('exploded')
  })

  test.each<[string, Parameters<typeof tableResolver>[0], string]>([
    ['a name that does not resolve', {}, 'api.test could not be resolved'],
    ['an empty answer', { 'api.test': [] }, 'api.test did not resolve to any address'],
  ])("%s in the policy's resolve(): no decision, decided by the resolver, in explain and in the event", async (_name, table, detail) => {
    const events: import('../src/index.js').RequestEvent[] = []
    const fetch = testFetch({ resolver: tableResolver(table), policy: async ({ resolve }) => (await resolve()).length > 0, onRequest: (e) => events.push(e) })
    expect(await fetch.explain({ url: url() }, ctx())).toEqual({ allowed: false, code: 'dns_failed', decidedBy: 'resolver', detail })
    expect(errorOf(await fetch.request({ url: url() }, ctx()))).toEqual({ code: 'dns_failed', message: detail })
    expect(events).toEqual([expect.objectContaining({ allowed: false, decidedBy: 'resolver', code: 'dns_failed', detail })])
    expect(events[0]).not.toHaveProperty('reason')
  })

  test('a resolver that never answers is timeout/connect', async () => {
    const fetch = testFetch({
      rules: { host: 'api.test', httpsOnly: false, port: server.port },
      resolver: () => new Promise(() => undefined),
    })
    expect(errorOf(await fetch.request({ url: url(), options: { connectTimeoutMs: 100 } }, ctx()))).toMatchObject({ code: 'timeout', phase: 'connect' })
  })
})

describe('explain', () => {
  const metadataRule = { rules: { host: '169.254.169.254', httpsOnly: false } }

  test('an allowed request: the rule that decided and the addresses, no connection', async () => {
    const before = server.connections
    const { fetch } = withResolver({ 'api.test': ['127.0.0.1'] })
    expect(await fetch.explain({ url: url() }, ctx())).toEqual({
      allowed: true,
      decidedBy: 'rule:api.test',
      addresses: [{ address: '127.0.0.1', class: 'loopback' }],
    })
    expect(server.connections).toBe(before)
  })

  test.each([
    'http://169.254.169.254/latest/meta-data/',
    'http://2852039166/latest/meta-data/',
    'http://0xa9fea9fe/',
    'http://0251.0376.0251.0376/',
    'http://169.254.43518/',
    'http://0xa9.0xfe.0xa9.0xfe/',
    'http://169.254.169.254./',
  ])('%s is the metadata address and is blocked even when a rule names it', async (spelling) => {
    const { fetch } = withResolver({}, metadataRule)
    expect(await fetch.explain({ url: spelling }, ctx())).toEqual({
      allowed: false,
      code: 'blocked_address',
      decidedBy: 'address-policy',
      reason: 'blocked address',
      detail: '169.254.169.254 resolves to blocked addresses: 169.254.169.254 (link-local)',
      addresses: [{ address: '169.254.169.254', class: 'link-local' }],
    })
  })

  test('an IPv4-mapped IPv6 literal shows the embedded address', async () => {
    const { fetch } = withResolver({}, { rules: { host: '[::ffff:a9fe:a9fe]', httpsOnly: false } })
    const explained = await fetch.explain({ url: 'http://[::ffff:169.254.169.254]/' }, ctx())
    expect(explained).toEqual({
      allowed: false,
      code: 'blocked_address',
      decidedBy: 'address-policy',
      reason: 'blocked address',
      detail: '[::ffff:a9fe:a9fe] resolves to blocked addresses: ::ffff:a9fe:a9fe (ipv4-mapped; embeds ipv4-mapped 169.254.169.254 (link-local))',
      addresses: [{ address: '::ffff:a9fe:a9fe', class: 'ipv4-mapped', embedded: [{ address: '169.254.169.254', class: 'link-local', form: 'ipv4-mapped' }] }],
    })
  })

  test('an invalid request is explained as validation', async () => {
    const { fetch } = withResolver({})
    expect(await fetch.explain({ url: 'ftp://x/' }, ctx())).toEqual({
      allowed: false,
      code: 'invalid_request',
      decidedBy: 'validation',
      reason: 'invalid request',
      detail: 'invalid url: scheme "ftp:" is not allowed; use http: or https:',
    })
  })

  test('a name that resolves to a private address', async () => {
    const { fetch } = withResolver({ 'api.test': ['10.0.0.5'] })
    expect(await fetch.explain({ url: url() }, ctx())).toEqual({
      allowed: false,
      code: 'blocked_address',
      decidedBy: 'address-policy',
      reason: 'blocked address',
      detail: 'api.test resolves to blocked addresses: 10.0.0.5 (private)',
      addresses: [{ address: '10.0.0.5', class: 'private' }],
    })
  })
})

describe('policy and gates', () => {
  test('the policy resolves only when it asks, and a refused request is never resolved', async () => {
    const resolver = tableResolver({ 'api.test': ['127.0.0.1'], 'other.test': ['127.0.0.1'] })
    const fetch = testFetch({ resolver, policy: ({ host }) => host === 'api.test' })
    expect(ok(await fetch.request({ url: url() }, ctx())).status).toBe(200)
    expect(errorOf(await fetch.request({ url: url('other.test') }, ctx()))?.code).toBe('denied')
    expect(resolver.asked).toEqual(['api.test'])
  })

  test('a policy resolve() that hits a blocked address is blocked_address', async () => {
    const fetch = testFetch({
      resolver: tableResolver({ 'api.test': ['10.0.0.1'] }),
      policy: async ({ resolve }) => (await resolve()).length > 0,
    })
    expect(errorOf(await fetch.request({ url: url() }, ctx()))?.code).toBe('blocked_address')
  })

  test('a host gate denies with its reason', async () => {
    const fetch = testFetch({
      rules: { host: 'api.test', httpsOnly: false, port: server.port },
      gates: [{ name: 'no-delete', check: (r) => (r.method === 'DELETE' ? { allow: false, reason: 'deletes are off' } : { allow: true }) }],
    })
    expect(ok(await fetch.request({ url: url() }, ctx())).status).toBe(200)
    const reply = await fetch.request({ url: url(), method: 'DELETE' }, ctx())
    expect(errorOf(reply)).toMatchObject({ code: 'denied', message: expect.stringContaining('deletes are off') })
    expect(await fetch.explain({ url: url(), method: 'DELETE' }, ctx())).toEqual({
      allowed: false,
      code: 'denied',
      decidedBy: 'gate:no-delete',
      reason: 'refused by a gate',
      detail: 'deletes are off',
    })
  })

  test('a gate sees the capsule id, the normalised URL and the hop', async () => {
    const seen: unknown[] = []
    const fetch = testFetch({
      rules: { host: 'api.test', httpsOnly: false, port: server.port },
      gates: [{ name: 'spy', check: ({ capsuleId, url: u, host, port, path, method, hop, scheme }) => (seen.push({ capsuleId, u, host, port, path, method, hop, scheme }), { allow: true }) }],
    })
    ok(await fetch.request({ url: `HTTP://API.TEST.:${server.port}/a/./b/../c?q=1#frag` }, ctx('cap-7')))
    expect(seen).toEqual([{ capsuleId: 'cap-7', u: `http://api.test:${server.port}/a/c?q=1`, host: 'api.test', port: server.port, path: '/a/c?q=1', method: 'GET', hop: 0, scheme: 'http' }])
  })

  test('invalid gates and policy are refused at creation', () => {
    expect(() => testFetch({ gates: [{ name: '', check: () => ({ allow: true }) }] })).toThrow(/gates\[0\]/)
    expect(() => testFetch({ policy: 'yes' as never })).toThrow('policy must be a function')
    expect(() => testFetch({ resolver: ['127.0.0.1'] as never })).toThrow('resolver must be a function')
    expect(() => testFetch({ onRequest: {} as never })).toThrow('onRequest must be a function')
    expect(() => testFetch({ addressPolicy: { allow: ['10.0.0.0/33'] } })).toThrow(/addressPolicy/)
    expect(() => testFetch({ rules: { host: '*' } })).toThrow(/rules\[0\]/)
  })
})

describe('onRequest events', () => {
  test('one event per request: allowed with status, refused with code and decider, query redacted, throwing listener ignored', async () => {
    const events: import('../src/index.js').RequestEvent[] = []
    const fetch = testFetch({
      rules: { host: 'api.test', httpsOnly: false, port: server.port },
      onRequest: (event) => {
        events.push(event)
        throw new Error('a broken logger')
      },
    })
    ok(await fetch.request({ url: url('api.test', '/a?token=secret') }, ctx('c1')))
    await fetch.request({ url: url('other.test', '/b') }, ctx('c1'))
    await fetch.request({ url: 'ftp://x/' }, ctx('c1'))
    const stream = await fetch.stream({ url: url('api.test', '/s') }, ctx('c2'))
    if (!('error' in stream)) stream.close()
    expect(events).toEqual([
      expect.objectContaining({ capsuleId: 'c1', kind: 'request', method: 'GET', url: `http://api.test:${server.port}/a?…`, allowed: true, decidedBy: 'rule:api.test', status: 200, redirects: 0, redactions: 0 }),
      expect.objectContaining({ capsuleId: 'c1', kind: 'request', url: `http://other.test:${server.port}/b`, allowed: false, decidedBy: 'rules', code: 'denied', reason: 'no rule matches the host', detail: 'no rule allows host other.test' }),
      expect.objectContaining({ capsuleId: 'c1', kind: 'request', method: undefined, url: undefined, allowed: false, decidedBy: 'validation', code: 'invalid_request', reason: 'invalid request' }),
      expect.objectContaining({ capsuleId: 'c2', kind: 'stream', allowed: true, decidedBy: 'rule:api.test', status: 200 }),
    ])
    expect(JSON.stringify(events)).not.toContain('secret')
    expect(events.every((e) => typeof e.durationMs === 'number')).toBe(true)
  })
})

describe('a resolution that outlasts the request', () => {
  /** A resolver that never answers, and events to see what was recorded. */
  function hanging(options: SafeFetchOptions = {}) {
    const events: Array<Record<string, unknown>> = []
    const fetch = testFetch({
      rules: { host: 'slow.test', httpsOnly: false },
      resolver: () => new Promise<never>(() => undefined),
      onRequest: (event) => void events.push(event as unknown as Record<string, unknown>),
      ...options,
    })
    return { fetch, events }
  }
  const expected = { code: 'timeout', phase: 'total', message: 'the request took longer than 100 ms' }

  test.each(['request', 'stream'] as const)('%s: the total deadline answers timeout (phase total), not cancelled', async (kind) => {
    const { fetch, events } = hanging()
    const reply = await fetch[kind]({ url: 'http://slow.test/', options: { timeoutMs: 100 } }, ctx(`slow-${kind}`))
    expect(errorOf(reply)).toEqual(expected)
    expect(events.at(-1)).toMatchObject({ allowed: true, decidedBy: 'rule:slow.test', code: 'timeout', phase: 'total' })
  })

  test("a policy waiting in resolve() when the deadline passes: the policy's step timed out (phase host), as any host step", async () => {
    const { fetch, events } = hanging({ rules: [], policy: async (request) => (await request.resolve()).length > 0 })
    const reply = await fetch.request({ url: 'http://slow.test/', options: { timeoutMs: 100 } }, ctx('slow-policy'))
    const message = "the host's policy did not answer before the request's 100 ms time limit ran out"
    expect(errorOf(reply)).toEqual({ code: 'timeout', phase: 'host', message })
    expect(events.at(-1)).toMatchObject({ allowed: false, decidedBy: 'policy', code: 'timeout', phase: 'host' })
  })
})
