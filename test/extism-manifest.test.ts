// Extism manifests: told apart from capsule.json, translated (hosts, limits, config, hash), refused where they would widen, and loaded end to end on loopback.
import { createHash } from 'node:crypto'
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { fromExtismManifest, hostPatternFor, isExtismManifest, WASM_PAGE_BYTES } from '../src/runtime/extism-manifest.js'
import { createRuntime, type RequestEvent, type Runtime, type SafeFetchOptions } from '../src/index.js'
import { capsulePath } from './helpers/capsules.js'
import { closeAllFetches, testFetch } from './helpers/fetch.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'

const PROBE = readFileSync(capsulePath('probe'))
const SHA256 = createHash('sha256').update(PROBE).digest('hex')
const DATA = { data: PROBE.toString('base64') }

let server: TestServer
beforeAll(async () => {
  server = await startServer((req, res) => {
    if (req.url === '/probe.wasm') return void res.end(PROBE)
    if (req.url === '/big') return void res.end(Buffer.alloc(5000, 97))
    res.end('ok')
  })
})
const runtimes: Runtime[] = []
afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.close()))
  await closeAllFetches()
  await closeAllServers()
})

describe('an Extism manifest is told apart from a capsule.json by its content', () => {
  test.each<[string, unknown, boolean]>([
    ['wasm is an array', { wasm: [] }, true],
    ['allowed_hosts only', { allowed_hosts: ['api.test'] }, true],
    ['memory only', { memory: { max_pages: 4 } }, true],
    ['config only', { config: {} }, true],
    ['timeout_ms only', { timeout_ms: 100 }, true],
    ['allowed_paths only', { allowed_paths: {} }, true],
    ["the JS SDK's allowedHosts", { allowedHosts: [] }, true],
    ['capsule.json with wasm a string', { name: 'p', version: '1', wasm: 'p.wasm' }, false],
    ['capsule.json with capabilities', { name: 'p', version: '1', capabilities: { http: [] } }, false],
    ['empty object', {}, false],
    ['an array', [{ wasm: [] }], false],
    ['null', null, false],
  ])('%s: %s', (_name, value, extism) => {
    expect(isExtismManifest(value)).toBe(extism)
  })
})

describe('allowed_hosts to host patterns', () => {
  test.each<[string, string]>([
    ['api.example.com', 'api.example.com'],
    ['*.example.com', '*.example.com'],
    ['127.0.0.1', '127.0.0.1'],
    ['[::1]', '[::1]'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
  ])('%s is kept as %s', (entry, pattern) => {
    expect(hostPatternFor(entry)).toBe(pattern)
  })

  test.each<[string, string]>([
    ['*', 'would allow every host in Extism; capsule-host never allows every host'],
    ['**', 'would allow every host'],
    ['*.', 'would allow every host'],
    ['', 'an empty entry is no host; remove it'],
    ['*.*', 'would allow every host'],
    ['.', 'is not a valid host name'],
    ['*example.com', 'also matches hosts that merely end in "example.com" (such as "evilexample.com") and names any depth under it; write "example.com" and "*.example.com"'],
    ['**.example.com', 'write "*.example.com" for one label under the domain'],
    ['api.*.example.com', 'list the hosts it should reach'],
    ['api-?.example.com', 'no "?" or "[...]"'],
    ['[ab].example.com', 'no "?" or "[...]"'],
    ['*.*.example.com', 'list the hosts it should reach'],
    ['*.com', 'a public suffix'],
    ['*.co.uk', 'a public suffix'],
    ['API.example.com', 'use "api.example.com"'],
    ['api.example.com.', 'use "api.example.com"'],
    ['api.example.com:8443', 'Extism matches the host only, never a port'],
    ['https://api.example.com', 'is not a host'],
  ])('%j is refused: %s', (entry, message) => {
    expect(() => hostPatternFor(entry)).toThrow(message)
  })
})

const translate = (manifest: Record<string, unknown>, wasm?: unknown) => fromExtismManifest({ wasm: [DATA], ...manifest }, process.cwd(), wasm)

describe('translation', () => {
  test('hosts become capabilities; no allowed_hosts reaches nothing, as in Extism', async () => {
    expect((await translate({ allowed_hosts: ['api.test', '*.example.com'] })).manifest?.capabilities).toEqual({ http: ['api.test', '*.example.com'] })
    expect((await translate({})).manifest?.capabilities).toEqual({ http: [] })
    expect((await translate({ allowed_hosts: null })).manifest?.capabilities).toEqual({ http: [] })
  })

  test.each<[string, Record<string, unknown>, object]>([
    ['max_pages 1 (the smallest)', { memory: { max_pages: 1 } }, { memoryBytes: WASM_PAGE_BYTES }],
    ['max_pages 16', { memory: { max_pages: 16 } }, { memoryBytes: 16 * WASM_PAGE_BYTES }],
    ['max_pages 2^32-1 (clamped by the runtime later)', { memory: { max_pages: 2 ** 32 - 1 } }, { memoryBytes: (2 ** 32 - 1) * WASM_PAGE_BYTES }],
    ['max_http_response_bytes 1', { memory: { max_http_response_bytes: 1 } }, { maxResponseBytes: 1 }],
    ['max_var_bytes at the vars limit', { memory: { max_var_bytes: 1024 * 1024 } }, {}],
    ['max_var_bytes above it', { memory: { max_var_bytes: 1024 * 1024 + 1 } }, {}],
    ['timeout_ms 1', { timeout_ms: 1 }, { callTimeoutMs: 1 }],
    ['timeout_ms past a Node timer', { timeout_ms: 2 ** 31 }, { callTimeoutMs: 2 ** 31 - 1 }],
    ['nulls, as Rust writes them', { memory: { max_pages: null, max_http_response_bytes: null, max_var_bytes: 1048576 }, timeout_ms: null, allowed_paths: null, config: {} }, {}],
    ["the JS SDK's camelCase", { memory: { maxPages: 2, maxHttpResponseBytes: 10 }, timeoutMs: 50 }, { memoryBytes: 2 * WASM_PAGE_BYTES, maxResponseBytes: 10, callTimeoutMs: 50 }],
  ])('%s', async (_name, manifest, limits) => {
    expect((await translate(manifest)).manifest?.limits).toEqual(limits)
  })

  test('config is handed on; the module name, else its file name, names the capsule', async () => {
    expect((await translate({ config: { a: '1' } })).config).toEqual({ a: '1' })
    expect((await fromExtismManifest({ wasm: [{ ...DATA, name: 'greeter' }] }, '.', undefined)).manifest?.name).toBe('greeter')
    expect((await fromExtismManifest({ wasm: [{ ...DATA, name: 'main' }] }, '.', undefined)).manifest?.name).toBe('capsule')
    expect((await fromExtismManifest({ wasm: [{ path: capsulePath('probe') }] }, '.', undefined)).manifest?.name).toBe('probe')
  })

  test('the hash is checked, in either case; the bytes are what loads', async () => {
    const { wasm } = await translate({ wasm: [{ ...DATA, hash: SHA256 }] })
    expect(Buffer.from(wasm as Uint8Array).equals(PROBE)).toBe(true)
    await expect(translate({ wasm: [{ ...DATA, hash: SHA256.toUpperCase() }] })).resolves.toBeDefined()
    await expect(translate({ wasm: [{ path: capsulePath('probe'), hash: SHA256 }] })).resolves.toBeDefined()
  })

  test.each<[string, Record<string, unknown>, string]>([
    ['a wrong hash', { wasm: [{ ...DATA, hash: '0'.repeat(64) }] }, `hash mismatch: "wasm[0].hash" is ${'0'.repeat(64)}, the module's sha256 is ${SHA256}`],
    ['a hash one digit short', { wasm: [{ ...DATA, hash: SHA256.slice(1) }] }, '"wasm[0].hash" must be the sha256 of the module as 64 hexadecimal digits'],
    ['a hash that is not hex', { wasm: [{ ...DATA, hash: 'g'.repeat(64) }] }, '64 hexadecimal digits'],
    ['allowed_paths', { allowed_paths: { '.': '/data' } }, '"allowed_paths" (".") cannot be granted: capsule-host gives WASI modules no file system'],
    ['two modules (linking)', { wasm: [{ ...DATA, name: 'lib' }, { ...DATA, name: 'main' }] }, 'it lists 2 modules in "wasm"; capsule-host runs one module per capsule and does not link modules'],
    ['no module at all', { wasm: [] }, 'it names no module in "wasm" and the load gives none'],
    ['an entry with path and data', { wasm: [{ ...DATA, path: 'x.wasm' }] }, '"wasm[0]" must have exactly one of "path", "data" or "url", not "path" and "data"'],
    ['an entry with none', { wasm: [{ name: 'main' }] }, '"wasm[0]" must have exactly one of "path", "data" or "url"'],
    ['an entry that is a string', { wasm: ['x.wasm'] }, '"wasm[0]" must be an object'],
    ['an unknown entry key', { wasm: [{ ...DATA, sha: SHA256 }] }, 'unknown key "wasm[0].sha"'],
    ['data that is not base64', { wasm: [{ data: 'not base64!' }] }, 'standard base64'],
    ['data without padding', { wasm: [{ data: 'AGFzbQ' }] }, 'standard base64'],
    ['a missing path', { wasm: [{ path: '/nonexistent/x.wasm' }] }, 'cannot read the capsule module /nonexistent/x.wasm'],
    ['url headers', { wasm: [{ url: 'http://127.0.0.1:1/x.wasm', headers: { authorization: 'x' } }] }, '"wasm[0].headers" is not supported'],
    ['url method POST', { wasm: [{ url: 'http://127.0.0.1:1/x.wasm', method: 'POST' }] }, '"wasm[0].method" "POST" is not supported'],
    ['a relative url', { wasm: [{ url: 'x.wasm' }] }, 'is not an absolute URL'],
    ['a data: url', { wasm: [{ url: 'data:application/wasm;base64,AAAA' }] }, 'must be an http:, https: or file: URL'],
    ['an unknown key, misspelt', { alowed_hosts: [] }, 'unknown key "alowed_hosts"; did you mean "allowed_hosts"?'],
    ['an unknown memory key', { memory: { max_page: 1 } }, 'unknown key "memory.max_page"; did you mean "memory.max_pages"?'],
    ['both spellings of one key', { allowed_hosts: [], allowedHosts: [] }, '"allowedHosts" and "allowed_hosts" are the same option; give one'],
    ['allowed_hosts not a list', { allowed_hosts: 'api.test' }, '"allowed_hosts"'],
    ['a bare *', { allowed_hosts: ['api.test', '*'] }, 'allowed_hosts[1]: "*" would allow every host'],
    ['config not strings', { config: { n: 1 } }, '"config.n"'],
    ['max_pages 0', { memory: { max_pages: 0 } }, '"memory.max_pages" must be at least 1'],
    ['max_pages 2^32', { memory: { max_pages: 2 ** 32 } }, '"memory.max_pages"'],
    ['max_pages negative', { memory: { max_pages: -1 } }, '"memory.max_pages"'],
    ['max_pages fractional', { memory: { max_pages: 1.5 } }, '"memory.max_pages"'],
    ['max_http_response_bytes 0', { memory: { max_http_response_bytes: 0 } }, '"memory.max_http_response_bytes" must be at least 1'],
    ['max_var_bytes just below the vars limit', { memory: { max_var_bytes: 1024 * 1024 - 1 } }, `"memory.max_var_bytes" ${1024 * 1024 - 1} is below capsule-host's vars limit`],
    ['max_var_bytes 0 (Extism: no vars)', { memory: { max_var_bytes: 0 } }, '"memory.max_var_bytes" 0 is below'],
    ['timeout_ms 0', { timeout_ms: 0 }, '"timeout_ms" must be at least 1'],
    ['timeout_ms negative', { timeout_ms: -5 }, '"timeout_ms"'],
    ['capsule.json keys beside Extism keys', { name: 'p', version: '1', config: { a: 'b' } }, 'it mixes capsule.json keys (name, version) with an Extism manifest\'s (wasm, config); write one kind of manifest'],
  ])('%s is load_failed', async (_name, manifest, message) => {
    await expect(translate(manifest)).rejects.toMatchObject({ name: 'CapsuleError', code: 'load_failed', message: expect.stringContaining(message) })
  })

  test('a module in the manifest and in the load is refused; a manifest without one takes the load\'s', async () => {
    await expect(translate({}, capsulePath('probe'))).rejects.toMatchObject({ code: 'load_failed', message: expect.stringContaining('give it in one place') })
    expect((await fromExtismManifest({ allowed_hosts: ['api.test'] }, '.', 'x.wasm')).wasm).toBe('x.wasm')
  })
})

function setup(options: SafeFetchOptions = {}) {
  const events: RequestEvent[] = []
  const fetch = testFetch({
    rules: [
      { host: 'api.test', httpsOnly: false, port: server.port },
      { host: 'other.test', httpsOnly: false, port: server.port },
    ],
    onRequest: (e) => events.push(e),
    ...options,
  })
  const runtime = createRuntime({ fetch, limits: { callTimeoutMs: 20_000 } })
  runtimes.push(runtime)
  return { runtime, events }
}

const get = async (capsule: { call(name: string, input: string): Promise<{ json<T>(): T }> }, url: string) =>
  (await capsule.call('request', JSON.stringify({ url }))).json<any>()

describe('runtime.load with an Extism manifest', () => {
  test('allowed_hosts narrows the host rules: declared is allowed, undeclared is denied by the manifest', async () => {
    const { runtime, events } = setup()
    const capsule = await runtime.load({ manifest: { wasm: [{ ...DATA, hash: SHA256 }], allowed_hosts: ['api.test'] } })
    expect((await get(capsule, `http://api.test:${server.port}/`)).status).toBe(200)
    expect((await get(capsule, `http://other.test:${server.port}/`)).error.code).toBe('denied')
    expect(events.at(-1)).toMatchObject({ allowed: false, decidedBy: 'manifest', detail: `the capsule's manifest does not declare http://other.test:${server.port}` })
  })

  test('config merges with the load\'s, and the load\'s wins key by key', async () => {
    const { runtime } = setup()
    const capsule = await runtime.load({ manifest: { wasm: [DATA], config: { region: 'eu', tier: 'free' } }, config: { tier: 'paid' } })
    expect((await capsule.call('config_get', 'region')).text()).toBe('eu')
    expect((await capsule.call('config_get', 'tier')).text()).toBe('paid')
  })

  test('max_http_response_bytes lowers the response cap', async () => {
    const { runtime } = setup()
    const capsule = await runtime.load({ manifest: { wasm: [DATA], allowed_hosts: ['api.test'], memory: { max_http_response_bytes: 1000 } } })
    expect((await get(capsule, `http://api.test:${server.port}/big`)).error.code).toBe('too_large')
  })

  test('timeout_ms lowers the call time limit', async () => {
    const { runtime } = setup()
    const capsule = await runtime.load({ manifest: { wasm: [DATA], timeout_ms: 300 } })
    const started = performance.now()
    await expect(capsule.call('spin')).rejects.toMatchObject({ code: 'call_timeout' })
    expect(performance.now() - started).toBeLessThan(10_000)
  })

  test('a manifest file: a relative path starts at its folder, and the module name is the capsule id\'s', async () => {
    const { runtime } = setup()
    const dir = mkdtempSync(join(tmpdir(), 'extism-manifest-'))
    copyFileSync(capsulePath('probe'), join(dir, 'probe.wasm'))
    writeFileSync(join(dir, 'plugin.json'), JSON.stringify({ wasm: [{ path: 'probe.wasm', hash: SHA256 }], allowed_hosts: ['api.test'] }))
    const capsule = await runtime.load({ manifest: join(dir, 'plugin.json') })
    expect(capsule.id).toMatch(/^probe-\d+$/)
    expect((await get(capsule, `http://api.test:${server.port}/`)).status).toBe(200)
  })

  test('a url source is downloaded (here from loopback) and its hash checked', async () => {
    const { runtime } = setup()
    const url = `http://127.0.0.1:${server.port}/probe.wasm`
    const capsule = await runtime.load({ manifest: { wasm: [{ url, hash: SHA256 }] } })
    expect((await capsule.call('echo', 'hi')).text()).toBe('hi')
    await expect(runtime.load({ manifest: { wasm: [{ url, hash: 'f'.repeat(64) }] } })).rejects.toMatchObject({ code: 'load_failed', message: expect.stringContaining('hash mismatch') })
  })

  test('a refused manifest loads nothing and keeps no id', async () => {
    const { runtime } = setup()
    await expect(runtime.load({ id: 'x', manifest: { wasm: [DATA], allowed_hosts: ['*'] } })).rejects.toMatchObject({ code: 'load_failed' })
    expect(runtime.capsules.size).toBe(0)
    await expect(runtime.load({ id: 'x', manifest: { wasm: [DATA] } })).resolves.toBeDefined()
  })
})

describe('runtime.load: memory.max_pages', () => {
  test('lowers the memory limit: a capsule that grows past it is stopped with memory_limit', async () => {
    const { runtime } = setup()
    const capsule = await runtime.load({ manifest: { wasm: [DATA], memory: { max_pages: 64 } } })
    await expect(capsule.call('grow')).rejects.toMatchObject({ code: 'memory_limit', message: expect.stringContaining(String(64 * WASM_PAGE_BYTES)) })
  })
})

/** Extism's own test plugins (see ../shared/fixtures/extism-plugins/README.md), loaded through manifests as Extism's hosts write them. */
const FIXTURES = fileURLToPath(new URL('../../shared/fixtures/extism-plugins/', import.meta.url))
const haveFixtures = existsSync(`${FIXTURES}http.wasm`) && existsSync(`${FIXTURES}upper.wasm`)

describe.skipIf(!haveFixtures)(`Extism's own plugins through an Extism manifest${haveFixtures ? '' : ` (skipped: ${FIXTURES} is absent)`}`, () => {
  test("http.wasm (Rust PDK): allowed_hosts decides which hosts the kernel's http_request reaches", async () => {
    const { runtime, events } = setup()
    const dir = mkdtempSync(join(tmpdir(), 'extism-manifest-'))
    const hash = createHash('sha256').update(readFileSync(`${FIXTURES}http.wasm`)).digest('hex')
    const manifest = { wasm: [{ path: `${FIXTURES}http.wasm`, name: 'main', hash }], allowed_hosts: ['api.test'], memory: { max_pages: null, max_http_response_bytes: null, max_var_bytes: 1048576 }, config: {}, allowed_paths: null, timeout_ms: null }
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest))
    const capsule = await runtime.load({ manifest: join(dir, 'manifest.json') })
    expect((await capsule.call('http_request', JSON.stringify({ url: `http://api.test:${server.port}/` }))).text()).toBe('ok')
    await expect(capsule.call('http_request', JSON.stringify({ url: `http://other.test:${server.port}/` }))).rejects.toMatchObject({ code: 'capsule_failed', hostCode: 'denied', message: expect.stringContaining('" failed: denied: ') })
    expect(events.at(-1)).toMatchObject({ allowed: false, decidedBy: 'manifest', code: 'denied' })
  })

  test("http.wasm: memory.max_http_response_bytes caps what the kernel's http_request may read", async () => {
    const { runtime } = setup()
    const capsule = await runtime.load({ manifest: { wasm: [{ path: `${FIXTURES}http.wasm` }], allowed_hosts: ['api.test'], memory: { max_http_response_bytes: 1000 } } })
    await expect(capsule.call('http_request', JSON.stringify({ url: `http://api.test:${server.port}/big` }))).rejects.toMatchObject({ code: 'capsule_failed', hostCode: 'too_large', message: expect.stringContaining('" failed: too_large: ') })
    expect((await capsule.call('http_request', JSON.stringify({ url: `http://api.test:${server.port}/` }))).text()).toBe('ok')
  })

  test("a manifest linking upper.wasm into another module, as Extism's tests do, is refused", async () => {
    const { runtime } = setup()
    const manifest = { wasm: [{ path: `${FIXTURES}upper.wasm`, name: 'extism:host/user' }, { path: `${FIXTURES}code.wasm`, name: 'main' }] }
    await expect(runtime.load({ manifest })).rejects.toMatchObject({ code: 'load_failed', message: expect.stringContaining('does not link modules to each other') })
  })
})
