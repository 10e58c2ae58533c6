// Integration: Extism plugins (third-party fixtures and our AS plugin) using the kernel's HTTP, served through the safe fetch, in each isolation mode.
import { existsSync, readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { CapsuleError, createRuntime, type AuditEvent, type Capsule, type Middleware, type Runtime } from '../src/index.js'
import { ALL_ISOLATIONS, capsulePath, lacksJspiFor, type Isolation } from './helpers/capsules.js'
import { closeAllFetches, tableResolver, testFetch } from './helpers/fetch.js'
import { closeAllServers, readBody, startServer, type TestServer } from './helpers/servers.js'

/** Plugins built by Extism's maintainers; CI has the folder beside the clone. */
const FIXTURES = fileURLToPath(new URL('../../shared/fixtures/extism-plugins/', import.meta.url))
const haveFixtures = existsSync(`${FIXTURES}http.wasm`) && existsSync(`${FIXTURES}http_headers.wasm`)

const SECRET = 's3cret-token-0123456789'
/** Printable bytes in a pattern that never repeats within a segment, so a misplaced chunk shows. */
const patterned = (size: number) => Buffer.from(Array.from({ length: size }, (_, i) => 33 + ((i * 7 + (i >> 10)) % 90)))
const BIG = 'x'.repeat(5000)

afterAll(async () => {
  await closeAllFetches()
  await closeAllServers()
})

let server: TestServer
/** Resolves when the upstream's /never has received its request (no sleep orders the timeout test). */
let neverArrived: () => void = () => undefined

async function upstream(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url!, 'http://x')
  switch (url.pathname) {
    case '/json':
      res.setHeader('content-type', 'application/json')
      return void res.end(JSON.stringify({ method: req.method, body: (await readBody(req)).toString(), accept: req.headers['accept'] ?? null }))
    case '/headers':
      res.setHeader('set-cookie', ['a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT', 'b=2'])
      res.setHeader('x-multi', ['one', 'two'])
      return void res.end('ok')
    case '/echo-auth':
      res.setHeader('x-echo', String(req.headers.authorization))
      return void res.end(`auth=${req.headers.authorization}`)
    case '/empty':
      res.statusCode = 204
      return void res.end()
    case '/status':
      res.statusCode = 418
      return void res.end('teapot')
    case '/redirect':
      res.writeHead(302, { location: '/json' })
      return void res.end()
    case '/redirect-out':
      res.writeHead(302, { location: `http://denied.test:${server.port}/json` })
      return void res.end()
    case '/big':
      return void res.end(BIG)
    case '/large': {
      // A body larger than one channel segment (1 MiB), every byte known.
      const bytes = Number(url.searchParams.get('bytes'))
      return void res.end(patterned(bytes))
    }
    case '/never':
      neverArrived()
      return
    default:
      res.statusCode = 404
      res.end('missing')
  }
}

beforeAll(async () => {
  server = await startServer(upstream)
})

const events: AuditEvent[] = []
const injectAuth: Middleware = async (ctx, next) => {
  ctx.req.header('authorization', `Bearer ${SECRET}`)
  return next()
}

function runtimeFor(isolation: Isolation): Runtime {
  const port = server.port
  const fetch = testFetch({
    rules: [
      { host: 'api.test', httpsOnly: false, port },
      { host: 'auth.test', httpsOnly: false, port, middleware: injectAuth },
      { host: 'private.test', httpsOnly: false, port },
      { host: 'metadata.test', httpsOnly: false, port },
    ],
    resolver: tableResolver({
      'api.test': ['127.0.0.1'],
      'auth.test': ['127.0.0.1'],
      'denied.test': ['127.0.0.1'],
      'private.test': ['10.0.0.1'],
      'metadata.test': ['169.254.169.254'],
    }),
    gates: [{ name: 'no-delete', check: (r) => (r.method === 'DELETE' ? { allow: false, reason: 'deletes are refused' } : { allow: true }) }],
    maxRedirects: 3,
    limits: { maxResponseBytes: 4096, timeoutMs: 1500 },
    onRequest: (event) => events.push(event),
  })
  const runtime = createRuntime({ fetch, isolation })
  runtimes.push(runtime)
  return runtime
}
const runtimes: Runtime[] = []
afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.close()))
})

/** The one event recorded for `capsuleId` since `from` (the plugin's call has returned, so it is there). */
function eventOf(capsuleId: string, from: number): AuditEvent {
  const mine = events.slice(from).filter((e) => e.capsuleId === capsuleId)
  expect(mine).toHaveLength(1)
  return mine[0]!
}

/** The call's failure, which must be a capsule_failed carrying the host code. */
async function failure(call: Promise<unknown>): Promise<CapsuleError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(CapsuleError)
  return error as CapsuleError
}

/** The plugins that return the response body from an export taking `{ url, method?, headers?, data? }`. */
interface BodyPlugin {
  readonly name: string
  readonly wasm: () => string
  readonly bodyExport: string
  readonly headersExport: string
}
const PLUGINS: BodyPlugin[] = [
  { name: 'http.wasm + http_headers.wasm (Extism, Rust PDK)', wasm: () => `${FIXTURES}http.wasm`, bodyExport: 'http_request', headersExport: 'http_get' },
  { name: 'extism-http (ours, AssemblyScript)', wasm: () => capsulePath('extism-http'), bodyExport: 'http_request', headersExport: 'http_get' },
]

function isolationSuite(isolation: Isolation, plugin: BodyPlugin) {
  let runtime: Runtime
  let body: Capsule
  let headers: Capsule
  const tag = `${isolation}-${plugin.name.split(' ')[0]}`
  const bodyId = `body-${tag}`
  const headersId = `headers-${tag}`
  beforeAll(async () => {
    runtime = runtimeFor(isolation)
    body = await runtime.load({ wasm: readFileSync(plugin.wasm()), id: bodyId })
    const headersWasm = plugin.wasm().endsWith('http.wasm') ? `${FIXTURES}http_headers.wasm` : plugin.wasm()
    headers = await runtime.load({ wasm: readFileSync(headersWasm), id: headersId })
  })
  const url = (host: string, path: string) => `http://${host}:${server.port}${path}`
  const call = async (input: object) => (await body.call(plugin.bodyExport, JSON.stringify(input))).text()

  test('allowed GET: the body comes back; the event says abi extism and the rule that allowed it', async () => {
    const from = events.length
    const reply = JSON.parse(await call({ url: url('api.test', '/json') }))
    expect(reply).toEqual({ method: 'GET', body: '', accept: null })
    expect(eventOf(bodyId, from)).toMatchObject({
      abi: 'extism',
      kind: 'request',
      allowed: true,
      decidedBy: 'rule:api.test',
      method: 'GET',
      url: url('api.test', '/json'),
      status: 200,
      addressClass: expect.any(String),
    })
  })

  test('POST with a body block and headers: method, body and header reach the upstream', async () => {
    const from = events.length
    const reply = JSON.parse(await call({ url: url('api.test', '/json'), method: 'POST', headers: { accept: 'text/x-test' }, data: 'hello body' }))
    expect(reply).toEqual({ method: 'POST', body: 'hello body', accept: 'text/x-test' })
    expect(eventOf(bodyId, from)).toMatchObject({ abi: 'extism', method: 'POST', bytesOut: 10, status: 200 })
  })

  test('a non-2xx status is a response, not an error; an empty body is an empty block', async () => {
    expect(await call({ url: url('api.test', '/status') })).toBe('teapot')
    expect(await call({ url: url('api.test', '/empty') })).toBe('')
  })

  test('headers: one JSON object, repeats joined with ", ", set-cookie lines with "\\n"', async () => {
    const from = events.length
    const got = JSON.parse((await headers.call(plugin.headersExport, JSON.stringify({ url: url('api.test', '/headers') }))).text())
    expect(got['x-multi']).toBe('one, two')
    expect(got['set-cookie']).toBe('a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT\nb=2')
    expect(got['content-length']).toBe('2')
    expect(eventOf(headersId, from)).toMatchObject({ abi: 'extism', allowed: true, status: 200 })
  })

  test('middleware-injected auth reaches the upstream; the secret is redacted in body and headers', async () => {
    const from = events.length
    expect(await call({ url: url('auth.test', '/echo-auth') })).toBe('auth=[redacted]')
    // Two replacements: the echo in the body and the one in the x-echo header.
    expect(eventOf(bodyId, from)).toMatchObject({ abi: 'extism', allowed: true, redactions: 2 })
    const got = JSON.parse((await headers.call(plugin.headersExport, JSON.stringify({ url: url('auth.test', '/echo-auth') }))).text())
    expect(got['x-echo']).toBe('[redacted]')
    expect(JSON.stringify(got)).not.toContain(SECRET)
  })

  test('redirect followed: each hop re-checked, the final body comes back', async () => {
    const from = events.length
    expect(JSON.parse(await call({ url: url('api.test', '/redirect') }))).toMatchObject({ method: 'GET' })
    expect(eventOf(bodyId, from)).toMatchObject({ abi: 'extism', allowed: true, redirects: 1, status: 200 })
  })

  // Refusals: the call fails with capsule_failed, the host code set and leading the host's message.
  const REFUSALS: Array<{ name: string; input: () => object; code: string; decidedBy: string; connects: boolean }> = [
    { name: 'a host no rule allows', input: () => ({ url: url('denied.test', '/json') }), code: 'denied', decidedBy: 'rules', connects: false },
    { name: 'a name that resolves to a private address', input: () => ({ url: url('private.test', '/json') }), code: 'blocked_address', decidedBy: 'address-policy', connects: false },
    { name: 'a name that resolves to the metadata address', input: () => ({ url: url('metadata.test', '/json') }), code: 'blocked_address', decidedBy: 'address-policy', connects: false },
    { name: 'a method a host gate refuses', input: () => ({ url: url('api.test', '/json'), method: 'DELETE' }), code: 'denied', decidedBy: 'gate:no-delete', connects: false },
    { name: 'a redirect to a host no rule allows', input: () => ({ url: url('api.test', '/redirect-out') }), code: 'redirect_denied', decidedBy: 'rules', connects: true },
    { name: 'a body over the capsule cap (4096)', input: () => ({ url: url('api.test', '/big') }), code: 'too_large', decidedBy: 'rule:api.test', connects: true },
    { name: 'a scheme other than http(s)', input: () => ({ url: 'ftp://api.test/x' }), code: 'invalid_request', decidedBy: 'validation', connects: false },
    { name: 'a hop-by-hop header', input: () => ({ url: url('api.test', '/json'), headers: { host: 'evil.test' } }), code: 'invalid_request', decidedBy: 'validation', connects: false },
    { name: 'a method that is not a token', input: () => ({ url: url('api.test', '/json'), method: 'GE T' }), code: 'invalid_request', decidedBy: 'validation', connects: false },
  ]
  for (const row of REFUSALS) {
    test(`refused: ${row.name} -> ${row.code}`, async () => {
      const from = events.length
      const seen = server.requests.length
      const error = await failure(call(row.input()))
      expect(error.code).toBe('capsule_failed')
      expect(error.hostCode).toBe(row.code)
      expect(error.message).toContain(`" failed: ${row.code}: `)
      const event = eventOf(bodyId, from)
      expect(event).toMatchObject({ abi: 'extism', code: row.code, decidedBy: row.decidedBy })
      if (!row.connects) expect(server.requests.length).toBe(seen)
    })
  }

  test('timeout: an upstream that never answers fails the call with timeout (total)', async () => {
    const from = events.length
    const arrived = new Promise<void>((resolve) => (neverArrived = resolve))
    const started = performance.now()
    const pending = failure(call({ url: url('api.test', '/never') }))
    await arrived
    const error = await pending
    expect(error.hostCode).toBe('timeout')
    expect(performance.now() - started).toBeLessThan(1500 + 3000)
    expect(eventOf(bodyId, from)).toMatchObject({ abi: 'extism', code: 'timeout', phase: 'total', allowed: true })
  })

  test('unloading the plugin while its request waits fails the call and records the request as cancelled', async () => {
    const own = runtimeFor(isolation)
    const id = `unload-${tag}`
    const capsule = await own.load({ wasm: readFileSync(plugin.wasm()), id })
    const from = events.length
    const arrived = new Promise<void>((resolve) => (neverArrived = resolve))
    const pending = failure(capsule.call(plugin.bodyExport, JSON.stringify({ url: url('api.test', '/never') })))
    await arrived
    await capsule.unload()
    expect((await pending).code).toBe('unloaded')
    expect(eventOf(id, from)).toMatchObject({ abi: 'extism', code: 'cancelled' })
  })

  test('after a refusal the plugin still works', async () => {
    await failure(call({ url: url('denied.test', '/json') }))
    expect(JSON.parse(await call({ url: url('api.test', '/json') }))).toMatchObject({ method: 'GET' })
  })
}

for (const isolation of ALL_ISOLATIONS) {
  const noJspi = lacksJspiFor(isolation)
  const reason = noJspi ? ` (skipped: Node ${process.version} has no JSPI)` : ''
  describe.skipIf(noJspi)(`Extism kernel HTTP, isolation ${isolation}${reason}`, () => {
    for (const plugin of PLUGINS) {
      const missing = plugin.name.includes('Rust PDK') && !haveFixtures
      describe.skipIf(missing)(`${plugin.name}${missing ? ` (skipped: ${FIXTURES} is absent)` : ''}`, () => isolationSuite(isolation, plugin))
    }

    test('manifest capabilities bind the Extism ABI too: a host the rules allow but the manifest does not is denied', async () => {
      const runtime = runtimeFor(isolation)
      const id = `manifest-${isolation}`
      const capsule = await runtime.load({ wasm: capsulePath('extism-http'), id, manifest: { name: 'm', version: '1', capabilities: { http: ['auth.test'] } } })
      const from = events.length
      const error = await failure(capsule.call('http_request', JSON.stringify({ url: `http://api.test:${server.port}/json` })))
      expect(error.hostCode).toBe('denied')
      expect(eventOf(id, from)).toMatchObject({ abi: 'extism', allowed: false, decidedBy: 'manifest', code: 'denied' })
    })

    test("the response cap is the capsule's own: a manifest's lower maxResponseBytes binds the Extism ABI", async () => {
      const runtime = runtimeFor(isolation)
      const id = `cap-${isolation}`
      const manifest = { name: 'cap', version: '1', capabilities: { http: ['api.test'] }, limits: { maxResponseBytes: 6 } }
      const capsule = await runtime.load({ wasm: capsulePath('extism-http'), id, manifest })
      // 'teapot' is exactly 6 bytes: at the cap passes; '{"method":...}' is over it.
      expect((await capsule.call('http_request', JSON.stringify({ url: `http://api.test:${server.port}/status` }))).text()).toBe('teapot')
      const from = events.length
      const error = await failure(capsule.call('http_request', JSON.stringify({ url: `http://api.test:${server.port}/json` })))
      expect(error.hostCode).toBe('too_large')
      expect(eventOf(id, from)).toMatchObject({ abi: 'extism', allowed: true, code: 'too_large' })
    })

    test('the policy decides a host no rule matches, seeing the Extism request as any other', async () => {
      const asked: Array<{ capsuleId: string; host: string; method: string }> = []
      const fetch = testFetch({
        policy: ({ capsuleId, host, method }) => (asked.push({ capsuleId, host, method }), host === 'api.test'),
        onRequest: (event) => events.push(event),
      })
      const runtime = createRuntime({ fetch, isolation })
      runtimes.push(runtime)
      const id = `policy-${isolation}`
      const capsule = await runtime.load({ wasm: capsulePath('extism-http'), id })
      const from = events.length
      const body = (await capsule.call('http_request', JSON.stringify({ url: `http://api.test:${server.port}/json`, method: 'PUT' }))).json()
      expect(body).toMatchObject({ method: 'PUT' })
      expect(asked).toEqual([{ capsuleId: id, host: 'api.test', method: 'PUT' }])
      expect(eventOf(id, from)).toMatchObject({ abi: 'extism', allowed: true, decidedBy: 'policy' })
      const error = await failure(capsule.call('http_request', JSON.stringify({ url: `http://other.test:${server.port}/json` })))
      expect(error.hostCode).toBe('denied')
    })

    test('a 3 MiB body (several channel segments in worker isolation) arrives intact, under a larger cap', async () => {
      const fetch = testFetch({
        rules: { host: 'api.test', httpsOnly: false, port: server.port },
        limits: { maxResponseBytes: 4 * 1024 * 1024 },
        onRequest: (event) => events.push(event),
      })
      const runtime = createRuntime({ fetch, isolation })
      runtimes.push(runtime)
      const id = `large-${isolation}`
      const capsule = await runtime.load({ wasm: haveFixtures ? readFileSync(`${FIXTURES}http.wasm`) : capsulePath('extism-http'), id })
      const size = 3 * 1024 * 1024 + 17
      const from = events.length
      const out = await capsule.call('http_request', JSON.stringify({ url: `http://api.test:${server.port}/large?bytes=${size}` }))
      expect(Buffer.from(out.bytes()).equals(patterned(size))).toBe(true)
      expect(eventOf(id, from)).toMatchObject({ abi: 'extism', status: 200, bytesIn: size })
    })

    test('a body the host still holds is copied: a plugin that writes over its block cannot change the next reply', async () => {
      // A synthetic response whose body is one buffer, owned whole, reused for every request.
      const constant = new TextEncoder().encode('constant body')
      const fetch = testFetch({
        rules: { host: 'api.test', httpsOnly: false, port: server.port, middleware: async () => ({ status: 200, body: constant }) },
      })
      const runtime = createRuntime({ fetch, isolation })
      runtimes.push(runtime)
      const capsule = await runtime.load({ wasm: capsulePath('extism-http'), id: `scribble-${isolation}` })
      const input = JSON.stringify({ url: `http://api.test:${server.port}/json` })
      expect((await capsule.call('scribble_twice', input)).text()).toBe('constant body')
      // The capsule-host ABI's stream chunks likewise (http_stream_read hands over a block).
      expect((await capsule.call('stream_scribble_twice', input)).text()).toBe('constant body')
      expect(new TextDecoder().decode(constant)).toBe('constant body')
    })

    test('our plugin: status, headers and body of one response; before any request status 0 and {}', async () => {
      const runtime = runtimeFor(isolation)
      const capsule = await runtime.load({ wasm: capsulePath('extism-http'), id: `summary-${isolation}` })
      expect((await capsule.call('before_any', '')).json()).toEqual({ status: 0, headers: {} })
      const reply = (await capsule.call('http_response', JSON.stringify({ url: `http://api.test:${server.port}/status` }))).json<Record<string, any>>()
      expect(reply).toMatchObject({ status: 418, body: 'teapot', headers: { 'content-length': '6' } })
      // The last response's status and headers stay across calls, and a refused request resets them.
      expect((await capsule.call('before_any', '')).json()).toMatchObject({ status: 418, headers: { 'content-length': '6' } })
      await expect(capsule.call('http_get', JSON.stringify({ url: `http://denied.test:${server.port}/json` }))).rejects.toMatchObject({ hostCode: 'denied' })
      expect((await capsule.call('before_any', '')).json()).toEqual({ status: 0, headers: {} })
    })
  })
}
