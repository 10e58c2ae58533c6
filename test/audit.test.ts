// Audit events: one per request or stream, allowed or refused, with the deciding check, the reason and the counts.
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createRuntime, type AuditEvent, type Runtime, type SafeFetchOptions } from '../src/index.js'
import { capsulePath } from './helpers/capsules.js'
import { closeAllFetches, ctx, ok, tableResolver, testFetch } from './helpers/fetch.js'
import { closeAllServers, readBody, startServer, type TestServer } from './helpers/servers.js'

let server: TestServer
beforeAll(async () => {
  server = await startServer(async (req, res) => {
    const body = await readBody(req)
    if (req.url === '/away') {
      res.writeHead(302, { location: 'http://evil.test/steal' })
      return void res.end()
    }
    if (req.url === '/stall') return void res.writeHead(200).write('x')
    res.end(`got ${body.length}`)
  })
})
const runtimes: Runtime[] = []
afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.close()))
  await closeAllFetches()
  await closeAllServers()
})

function audited(options: SafeFetchOptions = {}) {
  const events: AuditEvent[] = []
  const fetch = testFetch({
    rules: [
      { host: 'api.test', httpsOnly: false, port: server.port },
      { host: 'routed.test', httpsOnly: false, port: server.port, routes: [{ path: '/only/**' }] },
      { host: 'intranet.test', httpsOnly: false, port: server.port },
      { host: '169.254.169.254', httpsOnly: false },
    ],
    resolver: tableResolver({ 'api.test': ['127.0.0.1'], 'routed.test': ['127.0.0.1'], 'intranet.test': ['10.0.0.8'], 'evil.test': ['127.0.0.1'] }),
    maxRedirects: 3,
    ...options,
  })
  fetch.audit.on('request', (e) => events.push(e))
  return { fetch, events }
}

const base = () => `http://api.test:${server.port}`

describe('every refusal has an event with the right check and reason', () => {
  test.each<[string, SafeFetchOptions, () => unknown, Partial<AuditEvent>]>([
    ['no rule for the host', {}, () => ({ url: 'https://elsewhere.test/x?token=1' }), { decidedBy: 'rules', code: 'denied', reason: 'no rule matches the host', detail: 'no rule allows host elsewhere.test', url: 'https://elsewhere.test/x?…' }],
    ['no route on the origin', {}, () => ({ url: `http://routed.test:${server.port}/other` }), { decidedBy: 'rule:routed.test', code: 'denied', reason: 'no route matches the path', detail: 'no route of rule routed.test matches /other' }],
    ['the policy', { rules: [], policy: () => false }, () => ({ url: `${base()}/p` }), { decidedBy: 'policy', code: 'denied', reason: 'refused by the policy', detail: 'the policy refused the request' }],
    ['a host gate', { gates: [{ name: 'no-post', check: (r) => (r.method === 'POST' ? { allow: false, reason: 'posting is off' } : { allow: true }) }] }, () => ({ url: `${base()}/g`, method: 'POST', body: 'x' }), { decidedBy: 'gate:no-post', code: 'denied', reason: 'refused by a gate', detail: 'posting is off', bytesOut: 1 }],
    ['nothing configured', { rules: [] }, () => ({ url: `${base()}/d` }), { decidedBy: 'default', code: 'denied', reason: 'nothing is configured', detail: 'no rule, policy or gate is configured, so nothing is allowed' }],
    ['a name resolving to a private address', {}, () => ({ url: `http://intranet.test:${server.port}/` }), { decidedBy: 'address-policy', code: 'blocked_address', addressClass: 'private', reason: 'blocked address', detail: 'intranet.test resolves to blocked addresses: 10.0.0.8 (private)' }],
    ['the metadata literal', {}, () => ({ url: 'http://169.254.169.254/latest/meta-data/' }), { decidedBy: 'address-policy', code: 'blocked_address', addressClass: 'link-local', reason: 'blocked address', detail: '169.254.169.254 resolves to blocked addresses: 169.254.169.254 (link-local)' }],
    ['an invalid request', {}, () => ({ url: 'ftp://x/' }), { decidedBy: 'validation', code: 'invalid_request', reason: 'invalid request', detail: 'invalid url: scheme "ftp:" is not allowed; use http: or https:', method: undefined, url: undefined }],
    ['a redirect to a host no rule allows', {}, () => ({ url: `${base()}/away`, options: { redirect: 'follow' } }), { decidedBy: 'rules', code: 'redirect_denied', reason: 'no rule matches the host', detail: 'no rule allows host evil.test', url: expect.stringMatching(/^http:\/\/api\.test:\d+\/away$/) }],
  ])('%s', async (_name, options, request, expected) => {
    const { fetch, events } = audited(options)
    await fetch.request(request(), ctx('auditee'))
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ capsuleId: 'auditee', requestId: 'auditee#1', kind: 'request', allowed: false, redactions: 0, ...expected })
    expect(events[0]).not.toHaveProperty('route')
  })

  test('the manifest, and the stream table (through real capsules)', async () => {
    const { fetch, events } = audited()
    const runtime = createRuntime({ fetch })
    runtimes.push(runtime)
    const declared = await runtime.load({ wasm: capsulePath('probe'), id: 'declared', manifest: { name: 'p', version: '1', capabilities: { http: ['api.test'] } } })
    await declared.call('request', JSON.stringify({ url: `http://routed.test:${server.port}/only/x` }))
    expect(events.at(-1)).toMatchObject({
      capsuleId: 'declared',
      allowed: false,
      decidedBy: 'manifest',
      code: 'denied',
      reason: 'not declared in the manifest',
      detail: `the capsule's manifest does not declare http://routed.test:${server.port}`,
    })
    const holder = await runtime.load({ wasm: capsulePath('probe'), id: 'holder' })
    await holder.call('hold_streams', { request: { url: `${base()}/stall?secret=1` }, count: 5 })
    expect(events.at(-1)).toMatchObject({
      capsuleId: 'holder',
      kind: 'stream',
      allowed: false,
      decidedBy: 'stream-table',
      code: 'stream_limit',
      reason: 'too many open streams',
      detail: 'this capsule already has 4 open streams; close one first',
      url: `${base()}/stall?…`,
    })
    // The runtime's log is its own: its capsules' events only.
    expect(runtime.audit).not.toBe(fetch.audit)
    const own: AuditEvent[] = []
    const stop = runtime.audit.on('request', (e) => own.push(e))
    await declared.call('request', JSON.stringify({ url: `http://routed.test:${server.port}/only/x` }))
    await fetch.request({ url: 'https://elsewhere.test/' }, ctx('not-a-capsule'))
    stop()
    expect(events.slice(-2).map((e) => e.capsuleId)).toEqual(['declared', 'not-a-capsule'])
    expect(own).toEqual([events.at(-2)])
  })
})

describe('timeouts carry their phase', () => {
  const hang = () => new Promise<never>(() => {})
  test.each<[string, SafeFetchOptions, string, Partial<AuditEvent>]>([
    ['a network wait (idle)', {}, '/stall', { allowed: true, phase: 'idle' }],
    ['a gate that does not answer', { gates: [{ name: 'slow', check: hang }] }, '/g', { allowed: false, decidedBy: 'gate:slow', phase: 'host', reason: 'a host step did not answer in time', detail: "the host's gate:slow did not answer within 50 ms" }],
    // A failure after the rule allowed: still allowed, credited to the rule.
    ['middleware that does not answer', { middleware: hang }, '/m', { allowed: true, decidedBy: 'rule:api.test', phase: 'host', detail: "the host's middleware did not answer within 50 ms" }],
  ])('%s', async (_name, options, path, expected) => {
    const { fetch, events } = audited({ ...options, limits: { hostTimeoutMs: 50 } })
    await fetch.request({ url: `${base()}${path}`, options: { idleTimeoutMs: 50 } }, ctx('timed'))
    expect(events).toEqual([expect.objectContaining({ code: 'timeout', ...expected })])
  })
})

describe('allowed requests', () => {
  test('a buffered request: status, counts, address class, rule, redirects, unique ids', async () => {
    const { fetch, events } = audited()
    ok(await fetch.request({ url: `${base()}/a?q=secret`, method: 'POST', body: 'hello' }, ctx('c')))
    ok(await fetch.request({ url: `${base()}/b` }, ctx('c')))
    expect(events[0]).toMatchObject({
      capsuleId: 'c', kind: 'request', method: 'POST', url: `${base()}/a?…`, allowed: true, decidedBy: 'rule:api.test',
      addressClass: 'loopback', status: 200, bytesOut: 5, bytesIn: 'got 5'.length, redirects: 0, redactions: 0,
    })
    for (const field of ['reason', 'detail', 'code', 'route', 'error']) expect(events[0]).not.toHaveProperty(field)
    expect(events[0]!.requestId).not.toBe(events[1]!.requestId)
    expect(JSON.stringify(events)).not.toContain('secret')
  })

  test('a stream is recorded once, at its end, with the bytes read', async () => {
    const { fetch, events } = audited()
    const stream = await fetch.stream({ url: `${base()}/s` }, ctx())
    if ('error' in stream) throw new Error(stream.error.message)
    expect(events).toHaveLength(0)
    const chunks: Uint8Array[] = []
    for await (const chunk of stream) chunks.push(chunk)
    stream.close()
    expect(events).toEqual([expect.objectContaining({ kind: 'stream', allowed: true, status: 200, bytesIn: Buffer.concat(chunks).length })])
  })

  test('async iteration and JSON lines', async () => {
    const lines: string[] = []
    const { fetch } = audited({ auditStream: { write: (line: string) => lines.push(line) } })
    const iterator = fetch.audit[Symbol.asyncIterator]()
    const first = iterator.next()
    await fetch.request({ url: `${base()}/i` }, ctx('iter'))
    expect((await first).value).toMatchObject({ capsuleId: 'iter', status: 200 })
    await iterator.return?.(undefined)
    expect(lines).toHaveLength(1)
    expect(lines[0]!.endsWith('\n')).toBe(true)
    expect(JSON.parse(lines[0]!)).toMatchObject({ capsuleId: 'iter', status: 200, allowed: true })
  })
})

test('releasing a capsule records the events of its streams that were never read or closed', async () => {
  const { fetch, events } = audited()
  const stream = await fetch.stream({ url: `${base()}/stall` }, ctx('forgetful'))
  expect('error' in stream).toBe(false)
  expect(events).toHaveLength(0)
  await fetch.releaseCapsule('forgetful')
  expect(events).toEqual([expect.objectContaining({ capsuleId: 'forgetful', kind: 'stream', code: 'cancelled' })])
})

test('closing the safe fetch records the events of streams still open, like releasing their capsule', async () => {
  const { fetch, events } = audited()
  const stream = await fetch.stream({ url: `${base()}/stall` }, ctx('left-open'))
  expect('error' in stream).toBe(false)
  await fetch.close()
  expect(events).toEqual([expect.objectContaining({ capsuleId: 'left-open', kind: 'stream', code: 'cancelled' })])
})

test('the runtime audit log: its async iterators end when the runtime closes, having yielded its capsules\' events', async () => {
  const { fetch } = audited()
  const runtime = createRuntime({ fetch })
  const capsule = await runtime.load({ wasm: capsulePath('probe'), id: 'iterated' })
  const seen: string[] = []
  const loop = (async () => {
    for await (const event of runtime.audit) seen.push(`${event.requestId} ${event.decidedBy}`)
  })()
  await capsule.call('request', JSON.stringify({ url: `${base()}/i` }))
  await fetch.request({ url: `${base()}/i` }, ctx('outsider'))
  await runtime.close()
  await loop
  expect(seen).toEqual(['iterated#1 rule:api.test'])
  expect(runtime.audit.closed).toBe(true)
  expect(fetch.audit.closed).toBe(false)
})
