// Integration: real capsules (probe) in each isolation mode, calling the host functions against loopback servers.
import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { CapsuleError, createRuntime, hasJspi, type Capsule, type Runtime, type SafeFetch, type SafeFetchOptions, type SafeFetchSession } from '../src/index.js'
import { capsulePath, fnv1a32, fnv1a32Update, describeIsolations, type Isolation } from './helpers/capsules.js'
import { closeAllFetches, tableResolver, testFetch } from './helpers/fetch.js'
import { closeAllServers, readBody, startServer, type TestServer } from './helpers/servers.js'
import { tinyModule } from './helpers/wasm.js'

afterAll(async () => {
  await closeAllFetches()
  await closeAllServers()
})

/** A deterministic body of `size` bytes. */
function pattern(size: number): Buffer {
  const body = Buffer.alloc(size)
  for (let i = 0; i < size; i++) body[i] = (i * 31 + (i >> 8)) & 0xff
  return body
}

const SMALL = pattern(300_000)

async function upstream(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url!, 'http://x')
  switch (url.pathname) {
    case '/json':
      return void res.end(JSON.stringify({ hello: 'capsule', method: req.method, body: (await readBody(req)).toString() }))
    case '/binary':
      return void res.end(Buffer.from([0, 1, 2, 253, 254, 255]))
    case '/small':
      return void res.end(SMALL)
    case '/stall':
      res.writeHead(200)
      return void res.write('first')
    case '/never':
      return
    case '/redirect':
      res.writeHead(302, { location: '/json' })
      return void res.end()
    case '/big':
    case '/chunked': {
      // A streamed body of `bytes` bytes, generated in 1 MiB blocks; /chunked declares no length.
      const total = Number(url.searchParams.get('bytes'))
      const block = pattern(1024 * 1024)
      res.writeHead(200, url.pathname === '/big' ? { 'content-length': total } : {})
      let sent = 0
      const pump = () => {
        while (sent < total) {
          const piece = block.subarray(0, Math.min(block.length, total - sent))
          sent += piece.length
          if (!res.write(piece)) return void res.once('drain', pump)
        }
        res.end()
      }
      return pump()
    }
    default:
      res.statusCode = 404
      res.end('missing')
  }
}

let http: TestServer
let https: TestServer
/** A port on 127.0.0.1 that nothing listens on (a server was opened there and closed). */
let closedPort: number
beforeAll(async () => {
  http = await startServer(upstream)
  https = await startServer(upstream, { tls: true })
  const closed = await startServer(upstream)
  closedPort = closed.port
  await closed.close()
})

function fetchOptions(): SafeFetchOptions {
  return {
    rules: [
      { host: 'api.test', httpsOnly: false, port: [http.port, https.port, closedPort] },
      { host: 'private.test', httpsOnly: false, port: http.port },
      { host: 'mismatch.test', port: https.port },
      { host: 'nowhere.test', httpsOnly: false, port: http.port },
    ],
    resolver: tableResolver({ 'api.test': ['127.0.0.1'], 'private.test': ['10.0.0.1'], 'mismatch.test': ['127.0.0.1'] }),
    maxRedirects: 3,
  }
}

const runtimes: Runtime[] = []
afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.close()))
})

function runtimeFor(isolation: Isolation, options: SafeFetchOptions = {}, limits = {}): Runtime {
  const runtime = createRuntime({ fetch: testFetch({ ...fetchOptions(), ...options }), isolation, limits })
  runtimes.push(runtime)
  return runtime
}

describeIsolations('isolation %s', (isolation) => {
  let runtime: Runtime
  let probe: Capsule
  beforeAll(async () => {
    runtime = runtimeFor(isolation)
    probe = await runtime.load({ wasm: capsulePath('probe'), id: `probe-${isolation}` })
  })

  const base = () => `http://api.test:${http.port}`
  const request = async (req: unknown) => (await probe.call('request', typeof req === 'string' ? req : JSON.stringify(req))).json<Record<string, any>>()

  describe('http_request', () => {
    test('GET: status, rawHeaders (and headers only when asked), text body, meta', async () => {
      const reply = await request({ url: `${base()}/json` })
      expect(reply.status).toBe(200)
      expect(JSON.parse(reply.body)).toMatchObject({ hello: 'capsule', method: 'GET' })
      expect(reply.bodyEncoding).toBe('text')
      expect(reply.rawHeaders).toContainEqual(['content-length', String(reply.body.length)])
      expect(reply).not.toHaveProperty('headers')
      expect(reply.meta).toMatchObject({ finalUrl: `${base()}/json`, redirects: 0 })
      const both = await request({ url: `${base()}/json`, responseHeaders: 'both' })
      expect(both.headers['content-length']).toBe(String(both.body.length))
      expect(both.rawHeaders).toContainEqual(['content-length', String(both.body.length)])
    })

    test('POST with a body, method and headers; HTTPS through the fixture CA', async () => {
      const reply = await request({ url: `https://api.test:${https.port}/json`, method: 'post', headers: [['x-a', '1'], ['x-a', '2']], body: 'payload' })
      expect(JSON.parse(reply.body)).toMatchObject({ method: 'POST', body: 'payload' })
    })

    test('binary both ways: bodyBase64 in, responseBody base64 out', async () => {
      const reply = await request({ url: `${base()}/binary`, responseBody: 'base64', bodyBase64: 'AAEC', method: 'PUT' })
      expect(reply).toMatchObject({ bodyEncoding: 'base64', body: Buffer.from([0, 1, 2, 253, 254, 255]).toString('base64') })
    })

    test('redirect follow, with meta.redirects', async () => {
      const reply = await request({ url: `${base()}/redirect`, options: { redirect: 'follow' } })
      expect(reply.meta).toMatchObject({ redirects: 1, finalUrl: `${base()}/json` })
    })

    test('integrity on a buffered body', async () => {
      const good = `sha256-${createHash('sha256').update(SMALL).digest('base64')}`
      expect((await request({ url: `${base()}/small`, responseBody: 'base64', options: { integrity: good } })).status).toBe(200)
      expect((await request({ url: `${base()}/small`, responseBody: 'base64', options: { integrity: 'sha256-AAAA' } })).error.code).toBe('integrity_mismatch')
    })

    test.each<[string, string, () => unknown]>([
      ['a host no rule allows', 'denied', () => ({ url: 'https://elsewhere.test/' })],
      ['a name resolving to 10.0.0.1', 'blocked_address', () => ({ url: `http://private.test:${http.port}/` })],
      ['the metadata literal', 'denied', () => ({ url: 'http://169.254.169.254/latest/meta-data/' })],
      ['a name that does not resolve', 'dns_failed', () => ({ url: `http://nowhere.test:${http.port}/` })],
      ['a certificate for another name', 'tls_failed', () => ({ url: `https://mismatch.test:${https.port}/` })],
      ['a closed port', 'connect_failed', () => ({ url: `http://api.test:${closedPort}/` })],
      ['a server that never answers', 'timeout', () => ({ url: `${base()}/never`, options: { firstByteTimeoutMs: 100 } })],
      ['a body over the cap', 'too_large', () => ({ url: `${base()}/small`, options: { maxResponseBytes: 1000 } })],
      ['redirect "error"', 'redirect_denied', () => ({ url: `${base()}/redirect`, options: { redirect: 'error' } })],
      ['a redirect over the cap', 'too_many_redirects', () => ({ url: `${base()}/redirect`, options: { redirect: 'follow', maxRedirects: 0 } })],
      ['not JSON', 'invalid_request', () => '{"url":'],
      ['wrong types', 'invalid_request', () => ({ url: 5, method: [] })],
      ['an unknown field', 'invalid_request', () => ({ url: `${base()}/json`, extra: true })],
      ['a 2 MiB request', 'invalid_request', () => JSON.stringify({ url: `${base()}/json`, body: 'x'.repeat(2 * 1024 * 1024) })],
      ['a host-only header', 'invalid_request', () => ({ url: `${base()}/json`, headers: { host: 'evil' } })],
    ])('%s reaches the capsule as error code %s', async (_name, code, make) => {
      const reply = await request(make() as string)
      expect(reply.error.code).toBe(code)
      expect(typeof reply.error.message).toBe('string')
    })

    test('invalid UTF-8 input is invalid_request', async () => {
      const reply = (await probe.call('request', Uint8Array.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]))).json<any>()
      expect(reply.error.code).toBe('invalid_request')
    })

    test('network: a reset mid-body', async () => {
      const resetting = await startServer((_req, res) => {
        res.writeHead(200, { 'content-length': 100 })
        res.write('part')
        setTimeout(() => res.socket?.destroy(), 10)
      })
      const local = runtimeFor(isolation, { rules: { host: 'api.test', httpsOnly: false, port: resetting.port } })
      const capsule = await local.load({ wasm: capsulePath('probe') })
      const reply = (await capsule.call('request', JSON.stringify({ url: `http://api.test:${resetting.port}/` }))).json<any>()
      expect(reply.error.code).toBe('network')
      await local.close()
    })
  })

  describe('streams', () => {
    test('probe.stream reads a body to the end with the right fnv1a32 (fast path)', async () => {
      const summary = (await probe.call('stream', JSON.stringify({ url: `${base()}/small` }))).json<any>()
      expect(summary).toMatchObject({ status: 200, bytes: SMALL.length, fnv1a32: fnv1a32(SMALL) })
      expect(summary.chunks).toBeGreaterThan(0)
    })

    test('stream_plain agrees, through the four plain functions only', async () => {
      const summary = (await probe.call('stream_plain', JSON.stringify({ url: `https://api.test:${https.port}/small` }))).json<any>()
      expect(summary).toMatchObject({ status: 200, bytes: SMALL.length, fnv1a32: fnv1a32(SMALL) })
    })

    test('a start error comes back verbatim', async () => {
      expect((await probe.call('stream', JSON.stringify({ url: 'https://elsewhere.test/' }))).json<any>().error.code).toBe('denied')
    })

    test('at most 4 open streams: the 5th is stream_limit without network I/O; closing frees a slot; handles are not reused', async () => {
      const capsule = await runtime.load({ wasm: capsulePath('probe') })
      const before = http.requests.length
      const replies = (await capsule.call('hold_streams', { request: { url: `${base()}/stall` }, count: 5 })).json<any[]>()
      expect(replies.slice(0, 4).map((r) => r.handle)).toEqual(['1', '2', '3', '4'])
      expect(replies[4].error.code).toBe('stream_limit')
      expect(http.requests.length).toBe(before + 4)
      expect((await capsule.call('close_handle', '2')).text()).toBe('closed')
      const next = (await capsule.call('hold_streams', { request: { url: `${base()}/stall` }, count: 2 })).json<any[]>()
      expect(next[0].handle).toBe('5')
      expect(next[1].error.code).toBe('stream_limit')
      await capsule.unload()
    })

    test.each([
      ['unknown handle', '99'],
      ['not a number', 'abc'],
      ['leading zero', '01'],
      ['empty', ''],
      ['negative', '-1'],
      ['huge', '99999999999999999999999'],
    ])('read with a bad handle (%s) fails the call with invalid_request', async (_name, handle) => {
      const failure = await probe.call('read_handle', handle).catch((e: unknown) => e)
      expect(failure).toBeInstanceOf(CapsuleError)
      expect(failure).toMatchObject({ code: 'capsule_failed', hostCode: 'invalid_request' })
    })

    test('a handle of another capsule is invalid_request; close of it is a no-op', async () => {
      const owner = await runtime.load({ wasm: capsulePath('probe') })
      const [opened] = (await owner.call('hold_streams', { request: { url: `${base()}/stall` }, count: 1 })).json<any[]>()
      expect(opened.handle).toBe('1')
      const stranger = await runtime.load({ wasm: capsulePath('probe') })
      await expect(stranger.call('read_handle', opened.handle)).rejects.toMatchObject({ hostCode: 'invalid_request' })
      expect((await stranger.call('close_handle', opened.handle)).text()).toBe('closed')
      expect((await owner.call('read_handle', opened.handle)).text()).toBe('first')
      await Promise.all([owner.unload(), stranger.unload()])
    })

    test('an error while reading fails the call with its code and frees the handle', async () => {
      const capsule = await runtime.load({ wasm: capsulePath('probe') })
      const failure = await capsule.call('stream', JSON.stringify({ url: `${base()}/stall`, options: { idleTimeoutMs: 100 } })).catch((e: unknown) => e)
      expect(failure).toMatchObject({ code: 'capsule_failed', hostCode: 'timeout' })
      const replies = (await capsule.call('hold_streams', { request: { url: `${base()}/stall` }, count: 4 })).json<any[]>()
      expect(replies.every((r) => typeof r.handle === 'string')).toBe(true)
      await capsule.unload()
    })

    test('unloading during an active stream closes the upstream connection and fails the call', async () => {
      let closed!: () => void
      const upstreamClosed = new Promise<void>((resolve) => (closed = resolve))
      const server = await startServer((req, res) => {
        req.socket.on('close', closed)
        res.writeHead(200)
        res.write('some')
      })
      const local = runtimeFor(isolation, { rules: { host: 'api.test', httpsOnly: false, port: server.port } })
      const capsule = await local.load({ wasm: capsulePath('probe') })
      const call = capsule.call('stream', JSON.stringify({ url: `http://api.test:${server.port}/` })).catch((e: unknown) => e)
      await new Promise((resolve) => setTimeout(resolve, 200))
      await capsule.unload()
      await upstreamClosed
      expect(await call).toBeInstanceOf(CapsuleError)
      await expect(capsule.call('echo', 'x')).rejects.toMatchObject({ code: 'unloaded' })
    })

    test('unloading during a buffered request closes the upstream connection and fails the call', async () => {
      let closed!: () => void
      const upstreamClosed = new Promise<void>((resolve) => (closed = resolve))
      const server = await startServer((req) => void req.socket.on('close', closed))
      const local = runtimeFor(isolation, { rules: { host: 'api.test', httpsOnly: false, port: server.port } })
      const capsule = await local.load({ wasm: capsulePath('probe') })
      const call = capsule.call('request', JSON.stringify({ url: `http://api.test:${server.port}/` })).catch((e: unknown) => e)
      await new Promise((resolve) => setTimeout(resolve, 200))
      await capsule.unload()
      await upstreamClosed
      expect(await call).toMatchObject({ code: 'unloaded' })
    })

    test('200 MiB through probe.stream with the right fnv1a32', async () => {
      const total = 200 * 1024 * 1024
      const block = pattern(1024 * 1024)
      let expected = 0x811c9dc5
      for (let sent = 0; sent < total; sent += block.length) expected = fnv1a32Update(expected, block)
      const summary = (await probe.call('stream', JSON.stringify({ url: `${base()}/big?bytes=${total}` }))).json<any>()
      expect(summary).toMatchObject({ status: 200, bytes: total, fnv1a32: expected.toString(16).padStart(8, '0') })
    }, 60_000)
  })

  describe('loading and calling', () => {
    test('a second load of the same bytes does not compile again', async () => {
      const local = runtimeFor(isolation)
      await local.load({ wasm: capsulePath('probe') })
      await local.load({ wasm: capsulePath('probe') })
      expect(local.compilations).toBe(1)
    })

    test('a module importing what the runtime does not provide fails at load, naming the import', async () => {
      const bytes = tinyModule({ imports: [['extism:host/user', 'http_teleport']], exports: ['f'] })
      await expect(runtime.load({ wasm: bytes })).rejects.toMatchObject({ code: 'load_failed', message: expect.stringContaining('"extism:host/user" "http_teleport"') })
      const wasi = tinyModule({ imports: [['wasi_snapshot_preview1', 'fd_teleport']], exports: ['f'] })
      await expect(runtime.load({ wasm: wasi })).rejects.toMatchObject({ code: 'load_failed', message: expect.stringContaining('"wasi_snapshot_preview1" "fd_teleport"') })
    })

    test('a module importing AssemblyScript\'s default env.abort fails at load with the fix named', async () => {
      const bytes = tinyModule({ imports: [['env', 'abort']], exports: ['f'] })
      await expect(runtime.load({ wasm: bytes })).rejects.toMatchObject({
        code: 'load_failed',
        message: 'the capsule imports "env" "abort", which capsule-host does not provide (it provides extism:host/user, extism:host/env and wasi_snapshot_preview1): ' +
          'AssemblyScript\'s default abort hook; build with the SDK\'s preset (an asconfig.json with "extends": "./node_modules/capsule-host/capsules/asconfig.preset.json") ' +
          'or pass --use abort=~lib/capsule-host/capsules/sdk/abort/capsuleAbort to asc',
      })
      const other = tinyModule({ imports: [['env', 'teleport']], exports: ['f'] })
      await expect(runtime.load({ wasm: other })).rejects.toMatchObject({
        code: 'load_failed',
        message: 'the capsule imports "env" "teleport", which capsule-host does not provide (it provides extism:host/user, extism:host/env and wasi_snapshot_preview1)',
      })
    })

    test('bytes that are not Wasm, a missing file and an unknown scheme fail at load', async () => {
      await expect(runtime.load({ wasm: Uint8Array.from([1, 2, 3]) })).rejects.toMatchObject({ code: 'load_failed' })
      await expect(runtime.load({ wasm: '/nonexistent/probe.wasm' })).rejects.toMatchObject({ code: 'load_failed' })
      await expect(runtime.load({ wasm: 'ftp://127.0.0.1/x.wasm' })).rejects.toMatchObject({ code: 'load_failed' })
    })

    test('a module loads from a path, a file: URL, an http: URL (loopback) and bytes; a 404 is load_failed', async () => {
      const { readFileSync } = await import('node:fs')
      const { pathToFileURL } = await import('node:url')
      const bytes = readFileSync(capsulePath('probe'))
      const server = await startServer((req, res) => {
        if (req.url === '/probe.wasm') return void res.end(bytes)
        res.statusCode = 404
        res.end()
      })
      for (const wasm of [capsulePath('probe'), pathToFileURL(capsulePath('probe')), `http://127.0.0.1:${server.port}/probe.wasm`, new Uint8Array(bytes)]) {
        const capsule = await runtime.load({ wasm })
        expect((await capsule.call('echo', 'ok')).text()).toBe('ok')
        await capsule.unload()
      }
      await expect(runtime.load({ wasm: `http://127.0.0.1:${server.port}/missing.wasm` })).rejects.toMatchObject({
        code: 'load_failed',
        message: expect.stringContaining('HTTP 404'),
      })
    })

    test.each<[string, object]>([
      ['an empty id', { id: '' }],
      ['an unknown isolation', { isolation: 'thread' }],
      ['config values that are not strings', { config: { retries: 3 } }],
      ['a negative call time limit', { limits: { callTimeoutMs: -1 } }],
    ])('load with %s is load_failed', async (_name, options) => {
      await expect(runtime.load({ wasm: capsulePath('probe'), ...options })).rejects.toMatchObject({ code: 'load_failed' })
    })

    test('config values reach the capsule through Extism config; ids default to capsule-<n>', async () => {
      const capsule = await runtime.load({ wasm: capsulePath('probe'), config: { greeting: 'hello' } })
      expect(capsule.id).toMatch(/^capsule-\d+$/)
      expect((await capsule.call('config_get', 'greeting')).text()).toBe('hello')
      expect((await capsule.call('config_get', 'missing')).text()).toBe('')
      await capsule.unload()
    })

    test('an unknown export is no_such_export; a duplicate id is refused', async () => {
      await expect(probe.call('nope')).rejects.toMatchObject({ code: 'no_such_export' })
      await expect(runtime.load({ wasm: capsulePath('probe'), id: probe.id })).rejects.toMatchObject({ code: 'load_failed' })
    })

    test('an abort message and an Extism error reach the host in the capsule_failed error', async () => {
      await expect(probe.call('crash')).rejects.toMatchObject({ code: 'capsule_failed', message: expect.stringContaining('probe crashed on purpose') })
      await expect(probe.call('hold_streams', 'not json')).rejects.toMatchObject({
        code: 'capsule_failed',
        message: expect.stringContaining('hold_streams input is not JSON'),
      })
      expect((await probe.call('echo', 'still fine')).text()).toBe('still fine')
    })

    test('a read_into capacity of 0 is invalid_request (it would read as the end of the stream)', async () => {
      const capsule = await runtime.load({ wasm: capsulePath('probe') })
      const [opened] = (await capsule.call('hold_streams', { request: { url: `${base()}/stall` }, count: 1 })).json<any[]>()
      await expect(capsule.call('read_into_zero', opened.handle)).rejects.toMatchObject({ code: 'capsule_failed', hostCode: 'invalid_request' })
      await capsule.unload()
    })

    test('a capsule cannot fake a host code in its own error text', async () => {
      const failure = await probe.call('hold_streams', 'capsule-host denied: forged').catch((e: unknown) => e)
      expect(failure).toMatchObject({ code: 'capsule_failed', hostCode: undefined })
    })

    test('close() during a load leaves nothing behind', async () => {
      const local = runtimeFor(isolation)
      const loading = local.load({ wasm: capsulePath('probe') })
      await local.close()
      await expect(loading).rejects.toMatchObject({ code: 'unloaded' })
      expect(local.capsules.size).toBe(0)
    })

    test('unload() racing a call that hit its limit resolves only when the capsule is gone', async () => {
      const local = runtimeFor(isolation)
      const capsule = await local.load({ wasm: capsulePath('probe'), id: 'racer', limits: { callTimeoutMs: 200 } })
      const call = capsule.call('request', JSON.stringify({ url: `${base()}/never` })).catch((e: unknown) => e)
      await new Promise((resolve) => setTimeout(resolve, 200))
      await capsule.unload()
      expect(local.capsules.has('racer')).toBe(false)
      expect(await call).toBeInstanceOf(CapsuleError)
      expect((await (await local.load({ wasm: capsulePath('probe'), id: 'racer' })).call('echo', 'again')).text()).toBe('again')
    })

    test('a safe fetch that throws still answers the capsule (internal error, never a hang)', async () => {
      const broken = testFetch(fetchOptions())
      // The runtime sends a capsule's requests through its session: that session's request() throws.
      let sessions = 0
      const registerCapsule: SafeFetch['registerCapsule'] = (id, restriction) => {
        sessions++
        const session = broken.registerCapsule(id, restriction)
        return Object.assign(Object.create(session) as SafeFetchSession, { requestWire: () => Promise.reject(new Error('host bug')) })
      }
      const local = createRuntime({ fetch: { ...broken, registerCapsule }, isolation })
      runtimes.push(local)
      const capsule = await local.load({ wasm: capsulePath('probe'), limits: { callTimeoutMs: 5000 } })
      const reply = (await capsule.call('request', JSON.stringify({ url: `${base()}/json` }))).json<any>()
      expect(sessions).toBe(1)
      expect(reply.error).toEqual({ code: 'internal', message: 'internal error while handling the request' })
      // The capsule is still usable after the host bug.
      expect((await capsule.call('echo', 'still here')).text()).toBe('still here')
    })

    test('malformed input to http_stream_start is answered with invalid_request too', async () => {
      for (const input of ['{"url":', JSON.stringify({ url: 5 }), JSON.stringify({ url: `${base()}/small`, extra: 1 }), JSON.stringify({ url: `${base()}/small`, body: 'x'.repeat(2 * 1024 * 1024) })]) {
        expect((await probe.call('stream', input)).json<any>().error.code).toBe('invalid_request')
      }
      expect((await probe.call('stream', Uint8Array.from([0x7b, 0xff, 0x7d]))).json<any>().error.code).toBe('invalid_request')
    })

    test('a stream over its cap: a declared length is refused at start, a chunked body fails the read with too_large', async () => {
      const cap = { maxResponseBytes: 1024 * 1024 }
      const declared = (await probe.call('stream', JSON.stringify({ url: `${base()}/big?bytes=${4 * 1024 * 1024}`, options: cap }))).json<any>()
      expect(declared.error.code).toBe('too_large')
      const chunked = probe.call('stream', JSON.stringify({ url: `${base()}/chunked?bytes=${4 * 1024 * 1024}`, options: cap }))
      await expect(chunked).rejects.toMatchObject({ code: 'capsule_failed', hostCode: 'too_large' })
    })

    test('call output helpers: bytes, text, json', async () => {
      const out = await probe.call('echo', { a: 1 })
      expect(out.text()).toBe('{"a":1}')
      expect(out.json()).toEqual({ a: 1 })
      expect(Buffer.from(out.bytes()).toString()).toBe('{"a":1}')
    })

    test('calls to one capsule are queued, never overlapped', async () => {
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => probe.call('request', JSON.stringify({ url: `${base()}/json`, method: 'POST', body: `n${i}` }))),
      )
      expect(results.map((r) => JSON.parse(r.json<any>().body).body)).toEqual(Array.from({ length: 8 }, (_, i) => `n${i}`))
    })

    test('a capsule may lower its limits but never raise them', async () => {
      const local = runtimeFor(isolation, {}, { callTimeoutMs: 300 })
      const capsule = await local.load({ wasm: capsulePath('probe'), limits: { callTimeoutMs: 60_000 } })
      const started = performance.now()
      const call = capsule.call('request', JSON.stringify({ url: `${base()}/never` }))
      await expect(call).rejects.toMatchObject({ code: 'call_timeout' })
      expect(performance.now() - started).toBeLessThan(5000)
      await expect(local.load({ wasm: capsulePath('probe'), limits: { memoryBytes: 1 } })).rejects.toMatchObject({ code: 'load_failed' })
    })

    test('a capsule past its memory limit is stopped with memory_limit; it can be loaded again', async () => {
      const local = runtimeFor(isolation, {}, { memoryBytes: 16 * 1024 * 1024 })
      const capsule = await local.load({ wasm: capsulePath('probe'), id: 'hog' })
      await expect(capsule.call('grow')).rejects.toMatchObject({ code: 'memory_limit' })
      await expect(capsule.call('echo', 'x')).rejects.toMatchObject({ code: 'unloaded' })
      const again = await local.load({ wasm: capsulePath('probe'), id: 'hog' })
      expect((await again.call('echo', 'back')).text()).toBe('back')
    })
  })
})

describe('worker isolation only', () => {
  test('a capsule hoarding Extism kernel memory is stopped with memory_limit, both through mem_to_block and alloc', async () => {
    const runtime = runtimeFor('worker', {}, { memoryBytes: 64 * 1024 * 1024 })
    const before = process.memoryUsage().rss
    for (const exportName of ['hoard', 'hoard_alloc']) {
      const capsule = await runtime.load({ wasm: capsulePath('probe'), id: `hoarder-${exportName}` })
      await expect(capsule.call(exportName)).rejects.toMatchObject({ code: 'memory_limit' })
    }
    // 1000 blocks of 16 MiB would be 16 GiB; the limit stops it near 2 x 64 MiB.
    expect(process.memoryUsage().rss - before).toBeLessThan(1024 * 1024 * 1024)
  })

  test('a module whose start function loops forever fails to load in time and leaves nothing running', async () => {
    const runtime = runtimeFor('worker', {}, { callTimeoutMs: 300 })
    const started = performance.now()
    await expect(runtime.load({ wasm: tinyModule({ exports: ['f'], startLoops: true }) })).rejects.toMatchObject({
      code: 'load_failed',
      message: expect.stringContaining('did not finish instantiating within 300 ms'),
    })
    expect(performance.now() - started).toBeLessThan(5000)
    expect(runtime.capsules.size).toBe(0)
  })


  test('a capsule stuck in an infinite loop is terminated while another keeps streaming', async () => {
    const runtime = runtimeFor('worker')
    const spinner = await runtime.load({ wasm: capsulePath('probe'), id: 'spinner', limits: { callTimeoutMs: 500 } })
    const streamer = await runtime.load({ wasm: capsulePath('probe'), id: 'streamer' })
    const total = 64 * 1024 * 1024
    const spinning = spinner.call('spin').catch((e: unknown) => e)
    const streaming = streamer.call('stream', JSON.stringify({ url: `http://api.test:${http.port}/big?bytes=${total}` }))
    expect(await spinning).toMatchObject({ code: 'call_timeout' })
    expect((await streaming).json()).toMatchObject({ status: 200, bytes: total })
    await expect(spinner.call('echo', 'x')).rejects.toMatchObject({ code: 'unloaded' })
    const reloaded = await runtime.load({ wasm: capsulePath('probe'), id: 'spinner' })
    expect((await reloaded.call('echo', 'alive')).text()).toBe('alive')
  }, 30_000)
})

describe.runIf(!hasJspi())('without JSPI', () => {
  test('asking for inline isolation is a clear error at load time', async () => {
    const runtime = runtimeFor('inline' as never)
    await expect(runtime.load({ wasm: capsulePath('probe') })).rejects.toMatchObject({
      code: 'unsupported',
      message: expect.stringContaining('WebAssembly.Suspending'),
    })
  })
})

test('createRuntime refuses bad options', () => {
  expect(() => createRuntime({ fetch: undefined as never })).toThrow(/fetch/)
  expect(() => createRuntime({ fetch: testFetch(), isolation: 'thread' as never })).toThrow(/isolation/)
  expect(() => createRuntime({ fetch: testFetch(), limits: { callTimeoutMs: 0 } })).toThrow(/callTimeoutMs/)
})
