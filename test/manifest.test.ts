// Capsule manifests: validated at load, a gate that narrows the host rules, and limits that only go down.
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { compileCapabilities } from '../src/gate/capabilities.js'
import { createRuntime, parseManifest, type RequestEvent, type Runtime, type SafeFetchOptions } from '../src/index.js'
import { capsulePath } from './helpers/capsules.js'
import { closeAllFetches, tableResolver, testFetch } from './helpers/fetch.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'

let server: TestServer
beforeAll(async () => {
  server = await startServer((req, res) => {
    if (req.url === '/big') return void res.end(Buffer.alloc(5000, 97))
    if (req.url === '/stall') return void res.writeHead(200).write('x')
    res.end('ok')
  })
})
const runtimes: Runtime[] = []
afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.close()))
  await closeAllFetches()
  await closeAllServers()
})

const MANIFEST = { name: 'probe', version: '1.0.0' }

function setup(options: SafeFetchOptions = {}) {
  const events: RequestEvent[] = []
  const fetch = testFetch({
    rules: [
      { host: 'api.test', httpsOnly: false, port: server.port },
      { host: 'other.test', httpsOnly: false, port: server.port },
    ],
    resolver: tableResolver({ 'api.test': ['127.0.0.1'], 'other.test': ['127.0.0.1'] }),
    onRequest: (e) => events.push(e),
    ...options,
  })
  const runtime = createRuntime({ fetch })
  runtimes.push(runtime)
  return { runtime, events }
}

const get = async (capsule: { call(name: string, input: string): Promise<{ json<T>(): T }> }, url: string, options?: object) =>
  (await capsule.call('request', JSON.stringify({ url, ...(options ? { options } : {}) }))).json<any>()

describe('manifest validation', () => {
  test.each<[string, unknown, string]>([
    ['missing name', { version: '1' }, 'name'],
    ['empty version', { name: 'x', version: '' }, 'version'],
    ['unknown field', { ...MANIFEST, permissions: [] }, 'permissions'],
    ['capabilities.http not a list', { ...MANIFEST, capabilities: { http: 'api.test' } }, 'capabilities.http'],
    ['unknown capability kind', { ...MANIFEST, capabilities: { fs: ['/'] } }, 'fs'],
    ['negative limit', { ...MANIFEST, limits: { timeoutMs: -1 } }, 'limits.timeoutMs'],
    ['unknown limit', { ...MANIFEST, limits: { cpu: 1 } }, 'cpu'],
    ['not an object', 'probe', 'expected object'],
    ['quotas with no limit', { ...MANIFEST, quotas: {} }, 'a quota needs at least one of requests, concurrent, responseBytes'],
    ['a quota with limit 0', { ...MANIFEST, quotas: { requests: { limit: 0, windowMs: 1000 } } }, 'quotas.requests.limit'],
    ['a quota key (manifests have none)', { ...MANIFEST, quotas: { key: 'capsule', concurrent: 1 } }, 'key'],
    ['a fractional concurrent quota', { ...MANIFEST, quotas: { concurrent: 0.5 } }, 'quotas.concurrent'],
  ])('%s is load_failed naming the field', (_name, manifest, field) => {
    expect(() => parseManifest(manifest)).toThrow(expect.objectContaining({ code: 'load_failed', message: expect.stringContaining(field) }))
  })

  test('a bad capability entry fails the load', async () => {
    const { runtime } = setup()
    await expect(runtime.load({ wasm: capsulePath('probe'), manifest: { ...MANIFEST, capabilities: { http: ['*'] } } })).rejects.toMatchObject({
      code: 'load_failed',
      message: expect.stringContaining('capabilities.http[0]'),
    })
  })
})

describe('capabilities (table)', () => {
  test.each<[string, string[], { host: string; scheme: 'http' | 'https'; port: number }, boolean]>([
    ['exact host, any port', ['api.test'], { host: 'api.test', scheme: 'http', port: 8080 }, true],
    ['exact host, other host', ['api.test'], { host: 'other.test', scheme: 'https', port: 443 }, false],
    ['wildcard one label', ['*.example.com'], { host: 'a.example.com', scheme: 'https', port: 443 }, true],
    ['wildcard never the apex', ['*.example.com'], { host: 'example.com', scheme: 'https', port: 443 }, false],
    ['origin: scheme and default port', ['https://api.test'], { host: 'api.test', scheme: 'https', port: 443 }, true],
    ['origin: other scheme', ['https://api.test'], { host: 'api.test', scheme: 'http', port: 80 }, false],
    ['origin: other port', ['https://api.test'], { host: 'api.test', scheme: 'https', port: 8443 }, false],
    ['origin with port', ['http://api.test:8080'], { host: 'api.test', scheme: 'http', port: 8080 }, true],
    ['origin with wildcard', ['https://*.example.com'], { host: 'cdn.example.com', scheme: 'https', port: 443 }, true],
    ['nothing declared', [], { host: 'api.test', scheme: 'https', port: 443 }, false],
  ])('%s', (_name, entries, request, declared) => {
    const detail = `the capsule's manifest does not declare ${request.scheme}://${request.host}:${request.port}`
    expect(compileCapabilities(entries).undeclared(request)).toBe(declared ? undefined : detail)
  })

  test.each([['*'], ['a.*.com'], ['https://api.test/path'], ['ftp://api.test'], ['http://api.test:0'], ['API.test'], ['']])('%j is refused', (entry) => {
    expect(() => compileCapabilities([entry])).toThrow('capabilities.http[0]')
  })
})

describe('the manifest is a gate', () => {
  test('a capsule reaches what it declared, never what it did not, even when the host rules allow it', async () => {
    const { runtime, events } = setup()
    const capsule = await runtime.load({ wasm: capsulePath('probe'), manifest: { ...MANIFEST, capabilities: { http: ['api.test'] } } })
    expect(capsule.id).toMatch(/^probe-\d+$/)
    expect((await get(capsule, `http://api.test:${server.port}/`)).status).toBe(200)
    expect((await get(capsule, `http://other.test:${server.port}/`)).error.code).toBe('denied')
    expect(events.at(-1)).toMatchObject({
      allowed: false,
      decidedBy: 'manifest',
      reason: 'not declared in the manifest',
      detail: `the capsule's manifest does not declare http://other.test:${server.port}`,
      code: 'denied',
    })
  })

  test('host rules narrower than the manifest still decide: declared but not allowed is denied by the rules', async () => {
    const { runtime, events } = setup({ rules: { host: 'api.test', httpsOnly: false, port: server.port } })
    const capsule = await runtime.load({ wasm: capsulePath('probe'), manifest: { ...MANIFEST, capabilities: { http: ['*.test', 'api.test'] } } })
    expect((await get(capsule, `http://other.test:${server.port}/`)).error.code).toBe('denied')
    expect(events.at(-1)).toMatchObject({ allowed: false, decidedBy: 'rules', reason: 'no rule matches the host', detail: 'no rule allows host other.test', code: 'denied' })
    expect((await get(capsule, `http://api.test:${server.port}/`)).status).toBe(200)
  })

  test('a manifest without capabilities reaches nothing; a capsule without a manifest has only the host rules', async () => {
    const { runtime } = setup()
    const bare = await runtime.load({ wasm: capsulePath('probe'), manifest: MANIFEST })
    expect((await get(bare, `http://api.test:${server.port}/`)).error.code).toBe('denied')
    const free = await runtime.load({ wasm: capsulePath('probe') })
    expect((await get(free, `http://other.test:${server.port}/`)).status).toBe(200)
  })

  test('an origin capability pins the scheme and port', async () => {
    const { runtime } = setup()
    const capsule = await runtime.load({ wasm: capsulePath('probe'), manifest: { ...MANIFEST, capabilities: { http: [`http://api.test:${server.port}`] } } })
    expect((await get(capsule, `http://api.test:${server.port}/`)).status).toBe(200)
    expect((await get(capsule, `https://api.test:${server.port}/`)).error.code).toBe('denied')
  })
})

describe('limits from the manifest are lowered, never raised', () => {
  const declared = { ...MANIFEST, capabilities: { http: ['api.test'] } }

  test('a lower response cap applies; a higher one is clamped to the host', async () => {
    const { runtime } = setup({ limits: { maxResponseBytes: 10_000 } })
    const low = await runtime.load({ wasm: capsulePath('probe'), manifest: { ...declared, limits: { maxResponseBytes: 1000 } } })
    expect((await get(low, `http://api.test:${server.port}/big`)).error.code).toBe('too_large')
    const { runtime: strict } = setup({ limits: { maxResponseBytes: 1000 } })
    const high = await strict.load({ wasm: capsulePath('probe'), manifest: { ...declared, limits: { maxResponseBytes: 1_000_000 } } })
    expect((await get(high, `http://api.test:${server.port}/big`)).error.code).toBe('too_large')
  })

  test('maxOpenStreams and callTimeoutMs from the manifest', async () => {
    const { runtime } = setup()
    const capsule = await runtime.load({ wasm: capsulePath('probe'), manifest: { ...declared, limits: { maxOpenStreams: 2, callTimeoutMs: 300 } } })
    const replies = (await capsule.call('hold_streams', { request: { url: `http://api.test:${server.port}/stall` }, count: 3 })).json<any[]>()
    expect(replies.map((r) => r.handle ?? r.error.code)).toEqual(['1', '2', 'stream_limit'])
    await expect(capsule.call('spin')).rejects.toMatchObject({ code: 'call_timeout' })
  })

  test('a manifest asking for more time than the runtime allows gets the runtime limit', async () => {
    const fetch = testFetch()
    const runtime = createRuntime({ fetch, limits: { callTimeoutMs: 300 } })
    runtimes.push(runtime)
    const capsule = await runtime.load({ wasm: capsulePath('probe'), manifest: { ...MANIFEST, limits: { callTimeoutMs: 600_000 } } })
    const started = performance.now()
    await expect(capsule.call('spin')).rejects.toMatchObject({ code: 'call_timeout' })
    expect(performance.now() - started).toBeLessThan(5000)
  })
})

describe('capsule.json on disk', () => {
  function capsuleDir(manifest: unknown): string {
    const dir = mkdtempSync(join(tmpdir(), 'capsule-'))
    copyFileSync(capsulePath('probe'), join(dir, 'probe.wasm'))
    writeFileSync(join(dir, 'capsule.json'), typeof manifest === 'string' ? manifest : JSON.stringify(manifest))
    return dir
  }

  test('a capsule.json beside the module that names it is used', async () => {
    const dir = capsuleDir({ ...MANIFEST, name: 'beside', wasm: 'probe.wasm', capabilities: { http: ['api.test'] } })
    const { runtime } = setup()
    const capsule = await runtime.load({ wasm: join(dir, 'probe.wasm') })
    expect(capsule.id).toMatch(/^beside-\d+$/)
    expect((await get(capsule, `http://other.test:${server.port}/`)).error.code).toBe('denied')
  })

  test('a capsule.json that names another module is not this one\'s', async () => {
    const dir = capsuleDir({ ...MANIFEST, wasm: 'other.wasm', capabilities: { http: [] } })
    const { runtime } = setup()
    const capsule = await runtime.load({ wasm: join(dir, 'probe.wasm') })
    expect((await get(capsule, `http://other.test:${server.port}/`)).status).toBe(200)
  })

  test('loading by manifest path finds the module it names', async () => {
    const dir = capsuleDir({ ...MANIFEST, wasm: 'probe.wasm', capabilities: { http: ['api.test'] } })
    const { runtime } = setup()
    const capsule = await runtime.load({ manifest: join(dir, 'capsule.json') })
    expect((await get(capsule, `http://api.test:${server.port}/`)).status).toBe(200)
  })

  test.each([
    ['not JSON', '{ name: probe', 'not valid JSON'],
    ['invalid', JSON.stringify({ name: 'probe' }), 'version'],
  ])('a capsule.json beside the module that is %s fails the load', async (_name, text, reason) => {
    const dir = capsuleDir(text)
    const { runtime } = setup()
    await expect(runtime.load({ wasm: join(dir, 'probe.wasm') })).rejects.toMatchObject({ code: 'load_failed', message: expect.stringContaining(reason) })
  })

  test('a manifest naming no module, with none given, fails the load', async () => {
    const { runtime } = setup()
    await expect(runtime.load({ manifest: MANIFEST })).rejects.toMatchObject({ code: 'load_failed', message: expect.stringContaining('names no "wasm"') })
  })
})

describe('review regressions', () => {
  test('two runtimes sharing one safe fetch never share an id, and their manifests never mix', async () => {
    const fetch = testFetch({
      rules: [{ host: 'api.test', httpsOnly: false, port: server.port }, { host: 'other.test', httpsOnly: false, port: server.port }],
      resolver: tableResolver({ 'api.test': ['127.0.0.1'], 'other.test': ['127.0.0.1'] }),
    })
    const r1 = createRuntime({ fetch })
    const r2 = createRuntime({ fetch })
    runtimes.push(r1, r2)
    const a = await r1.load({ wasm: capsulePath('probe'), manifest: { ...MANIFEST, capabilities: { http: ['api.test'] } } })
    const b = await r2.load({ wasm: capsulePath('probe'), manifest: { ...MANIFEST, capabilities: { http: ['other.test'] } } })
    expect(a.id).not.toBe(b.id)
    expect((await get(a, `http://other.test:${server.port}/`)).error.code).toBe('denied')
    await expect(r2.load({ wasm: capsulePath('probe'), id: a.id })).rejects.toMatchObject({ code: 'load_failed', message: expect.stringContaining('already in use') })
    await b.unload()
    expect((await get(a, `http://other.test:${server.port}/`)).error.code).toBe('denied')
  })

  test('a capsule.json beside the module that names no module applies to it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'capsule-'))
    copyFileSync(capsulePath('probe'), join(dir, 'probe.wasm'))
    writeFileSync(join(dir, 'capsule.json'), JSON.stringify({ ...MANIFEST, capabilities: { http: ['api.test'] } }))
    const { runtime } = setup()
    const capsule = await runtime.load({ wasm: join(dir, 'probe.wasm') })
    expect((await get(capsule, `http://other.test:${server.port}/`)).error.code).toBe('denied')
  })

  test('a policy that resolves is never asked about a name the manifest did not declare', async () => {
    const resolver = tableResolver({ 'api.test': ['127.0.0.1'], 'leak.attacker.test': ['127.0.0.1'] })
    const { runtime } = setup({ rules: [], resolver, policy: async ({ resolve }) => (await resolve(), true) })
    const capsule = await runtime.load({ wasm: capsulePath('probe'), manifest: { ...MANIFEST, capabilities: { http: ['api.test'] } } })
    expect((await get(capsule, `http://leak.attacker.test:${server.port}/`)).error.code).toBe('denied')
    expect(resolver.asked).not.toContain('leak.attacker.test')
  })

  test('limits from the load cannot raise what the manifest lowered', async () => {
    const { runtime } = setup()
    const capsule = await runtime.load({ wasm: capsulePath('probe'), manifest: { ...MANIFEST, limits: { callTimeoutMs: 200 } }, limits: { callTimeoutMs: 20_000 } })
    const started = performance.now()
    await expect(capsule.call('spin')).rejects.toMatchObject({ code: 'call_timeout' })
    expect(performance.now() - started).toBeLessThan(3000)
  })
})
