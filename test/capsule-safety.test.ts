// Resource safety at the capsule boundary: capsule text, kernel vars and logs, outputs, inputs, time limits, worker-side validation.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  CapsuleError,
  createRuntime,
  MAX_TIMER_MS,
  type AuditEvent,
  type Capsule,
  type Runtime,
  type SafeFetch,
} from '../src/index.js'
import { capsulePath, describeIsolations, type Isolation } from './helpers/capsules.js'
import { closeAllFetches, testFetch } from './helpers/fetch.js'
import { closeAllServers, readBody, startServer, type TestServer } from './helpers/servers.js'

const MiB = 1024 * 1024
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/

let server: TestServer
/** What the upstream received, by request path. */
const received = new Map<string, Buffer>()

async function upstream(req: IncomingMessage, res: ServerResponse) {
  received.set(req.url!, await readBody(req))
  res.end('ok')
}

beforeAll(async () => {
  server = await startServer(upstream)
})

const runtimes: Runtime[] = []
afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.close()))
  await closeAllFetches()
  await closeAllServers()
})

function fetchFor(): SafeFetch {
  return testFetch({ rules: [{ host: 'api.test', httpsOnly: false, port: server.port }] })
}

function runtimeFor(isolation: Isolation, limits = {}, fetch = fetchFor()): Runtime {
  const runtime = createRuntime({ fetch, isolation, limits })
  runtimes.push(runtime)
  return runtime
}

describeIsolations('isolation %s', (isolation) => {
  let runtime: Runtime
  let hostile: Capsule
  let probe: Capsule
  beforeAll(async () => {
    runtime = runtimeFor(isolation)
    hostile = await runtime.load({ wasm: capsulePath('hostile'), config: { k: 'v' } })
    probe = await runtime.load({ wasm: capsulePath('probe') })
  })

  /** The failure of a call that must fail. */
  async function failure(capsule: Capsule, name: string, input: string): Promise<CapsuleError> {
    const error = await capsule.call(name, input).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(CapsuleError)
    return error as CapsuleError
  }

  describe('capsule text is escaped and capped; the raw bytes are a field of their own', () => {
    test.each([
      ['error_set of 4 MiB with ANSI escapes and newlines', 'error_text', 4 * MiB, '\u001b[31mred\nforged line\r\n'],
      ['error_set of 4 MiB of two-byte characters', 'error_text', 4 * MiB, '€漢\u202e'],
      ['log_error of 4 MiB, then a trap', 'log_then_trap', 4 * MiB, '\u001b]0;title\u0007\n'],
      ['a short error with a newline', 'error_text', 12, 'bad\nthing\u001b'],
    ])('%s', async (_name, exportName, size, text) => {
      const error = await failure(hostile, exportName, `${size}:${text}`)
      expect(error.code).toBe('capsule_failed')
      expect(error.message).not.toMatch(CONTROL)
      expect(error.message.length).toBeLessThan(16 * 1024 + 200)
      const unit = Buffer.from(text)
      const raw = error.rawText!
      expect(raw.byteLength).toBe(Math.min(size, 64 * 1024))
      expect(Buffer.from(raw.subarray(0, unit.byteLength))).toEqual(unit.subarray(0, Math.min(unit.byteLength, size)))
      if (size > 4096 * 4) expect(error.message).toContain(`(${size} bytes in all)`)
      if (text.includes('\n')) expect(error.message).toContain('\\n')
      if (text.includes('\u001b')) expect(error.message).toContain('\\u001b')
      // The capsule is still usable, and so is everything else.
      expect((await hostile.call('long_key', '1:k')).text()).toBe('present')
    })

    test('the exact message of a short error', async () => {
      const error = await failure(hostile, 'error_text', '12:bad\nthing\u001b')
      expect(error.message).toBe('the call to "error_text" failed: Plugin-originated error: bad\\nthing\\u001bba')
    })

    test('a stack overflow mid-allocation is memory_limit and stops the capsule; loaded again, it works', async () => {
      // The module's allocator may be left half-updated: every later call failed until a reload.
      const capsule = await runtime.load({ wasm: capsulePath('hostile'), config: { k: 'v' } })
      const error = await failure(capsule, 'stack_overflow', '0:x')
      expect(error).toMatchObject({ code: 'memory_limit', message: 'the call to "stack_overflow" ran out of stack (Maximum call stack size exceeded)' })
      await expect(capsule.call('long_key', '1:k')).rejects.toMatchObject({ code: 'unloaded', message: expect.stringContaining('was stopped (memory_limit); load it again') })
      const again = await runtime.load({ wasm: capsulePath('hostile'), config: { k: 'v' } })
      expect((await again.call('long_key', '1:k')).text()).toBe('present')
    })

    test("an export name with escapes is escaped in no_such_export", async () => {
      await expect(hostile.call('\u001b[2Jnope\n')).rejects.toMatchObject({ code: 'no_such_export', message: expect.not.stringMatching(CONTROL) })
    })
  })

  describe('Extism kernel functions read bounded prefixes and keep bounded state', () => {
    test('log lines are consumed: 20,000 logged KiB never accumulate past a 1 MiB memory limit', async () => {
      const small = runtimeFor(isolation, { memoryBytes: MiB })
      const capsule = await small.load({ wasm: capsulePath('hostile') })
      expect((await capsule.call('log_flood', `20000:${'x'.repeat(1024)}`)).text()).toBe('20000')
    })

    test('vars hold at most 1 MiB (keys and values): 500 vars of 1 KiB fit, 2000 are memory_limit', async () => {
      const capsule = await runtime.load({ wasm: capsulePath('hostile') })
      expect((await capsule.call('var_flood', `500:${'v'.repeat(1024)}`)).text()).toBe('500')
      const error = await failure(capsule, 'var_flood', `2000:${'v'.repeat(1024)}`)
      expect(error.code).toBe('memory_limit')
      expect(error.message).toMatch(/vars would hold \d+ bytes; the limit is 1048576/)
    })

    test.each([
      ['a key as long as the bound', 4096, 'k', 'absent'],
      ['a key one byte over the bound', 4097, 'k', 'absent'],
      ['a 16 MiB key of two-byte characters', 16 * MiB, '€', 'absent'],
      ['the configured key', 1, 'k', 'present'],
    ])('config_get with %s', async (_name, size, text, expected) => {
      expect((await hostile.call('long_key', `${size}:${text}`)).text()).toBe(expected)
    })
  })

  test("Extism's own http_request is served by capsule-host, never the Extism SDK: a 64 MiB request block is refused unread", async () => {
    const before = Date.now()
    await expect(hostile.call('extism_http', `${64 * MiB}:{"url":"http://api.test/`)).rejects.toMatchObject({
      code: 'capsule_failed',
      hostCode: 'invalid_request',
      message: expect.stringContaining(`" failed: invalid_request: the request is ${64 * MiB} bytes; the limit is 1048576`),
    })
    expect(Date.now() - before).toBeLessThan(10_000)
  })

  test('Extism blocks are bounded in all, not one by one: hoarding 16 MiB blocks stops at a 64 MiB limit', async () => {
    const small = runtimeFor(isolation, { memoryBytes: 64 * MiB })
    for (const exportName of ['hoard', 'hoard_alloc']) {
      const capsule = await small.load({ wasm: capsulePath('probe') })
      await expect(capsule.call(exportName)).rejects.toMatchObject({ code: 'memory_limit' })
    }
  })

  test('the input is a copy: a capsule cannot write into the caller\'s buffer', async () => {
    const input = Uint8Array.of(1, 2, 3)
    await probe.call('echo', input)
    expect([...input]).toEqual([1, 2, 3])
  })

  describe('maxOutputBytes', () => {
    test.each([
      ['at the limit', 1000, 'ok'],
      ['one byte over', 1001, 'output_too_large'],
    ])('an output %s', async (_name, size, outcome) => {
      const capped = await runtimeFor(isolation, { maxOutputBytes: 1000 }).load({ wasm: capsulePath('hostile') })
      const call = capped.call('big_output', `${size}:ab`)
      if (outcome === 'ok') return expect((await call).bytes().byteLength).toBe(size)
      await expect(call).rejects.toMatchObject({
        code: 'output_too_large',
        message: `the call to "big_output" returned ${size} bytes; the limit is 1000 (limits.maxOutputBytes)`,
      })
      // Not fatal: the capsule's state is intact.
      expect((await capped.call('big_output', '10:ab')).text()).toBe('ababababab')
    })

    test('the default is 16 MiB; a load may lower it', async () => {
      const capsule = await runtime.load({ wasm: capsulePath('hostile'), limits: { maxOutputBytes: 10 } })
      await expect(capsule.call('big_output', '11:a')).rejects.toMatchObject({ code: 'output_too_large' })
      expect((await hostile.call('big_output', `${16 * MiB}:a`)).bytes().byteLength).toBe(16 * MiB)
      await expect(hostile.call('big_output', `${16 * MiB + 1}:a`)).rejects.toMatchObject({ code: 'output_too_large' })
    })
  })

  describe('capsule.call inputs', () => {
    const shared = new SharedArrayBuffer(3)
    new Uint8Array(shared).set([7, 8, 9])
    const words = new Uint16Array([0x0102, 0x0304, 0x0506])
    test.each<[string, unknown, number[] | string]>([
      ['a string, as UTF-8', 'é€', 'é€'],
      ['a Uint8Array', Uint8Array.of(1, 2, 3), [1, 2, 3]],
      ['a Uint8Array view into a larger buffer', Uint8Array.of(0, 1, 2, 3, 4).subarray(1, 3), [1, 2]],
      ['a Uint16Array, as its bytes', words.subarray(1), [0x04, 0x03, 0x06, 0x05]],
      ['a DataView, as its bytes', new DataView(Uint8Array.of(9, 8, 7, 6).buffer, 1, 2), [8, 7]],
      ['a Buffer', Buffer.from('buf'), 'buf'],
      ['an ArrayBuffer', Uint8Array.of(4, 5).buffer, [4, 5]],
      ['a SharedArrayBuffer', shared, [7, 8, 9]],
      ['an object, as JSON', { a: [1, 'x'] }, '{"a":[1,"x"]}'],
      ['a number, as JSON', 42, '42'],
      ['null, as JSON', null, 'null'],
      ['false, as JSON', false, 'false'],
      ['undefined, as nothing', undefined, ''],
    ])('%s', async (_name, input, expected) => {
      const output = (await probe.call('echo', input as never)).bytes()
      expect([...output]).toEqual(typeof expected === 'string' ? [...Buffer.from(expected)] : expected)
    })

    const circular: Record<string, unknown> = {}
    circular.self = circular
    test.each<[string, unknown, string]>([
      ['a BigInt inside an object', { n: 1n }, 'the input has no JSON form (Do not know how to serialize a BigInt); give a string, bytes or a JSON-serialisable value'],
      ['a BigInt', 5n, 'the input has no JSON form (Do not know how to serialize a BigInt); give a string, bytes or a JSON-serialisable value'],
      ['a circular object', circular, expect.stringMatching(/^the input has no JSON form \(Converting circular structure to JSON/) as unknown as string],
      ['a function', () => 1, 'a function has no JSON form; give a string, bytes or a JSON-serialisable value'],
      ['a symbol', Symbol('s'), 'a symbol has no JSON form; give a string, bytes or a JSON-serialisable value'],
    ])('%s is invalid_input, and the capsule stays usable', async (_name, input, message) => {
      await expect(probe.call('echo', input as never)).rejects.toMatchObject({ code: 'invalid_input', message })
      expect((await probe.call('echo', 'still here')).text()).toBe('still here')
    })
  })

  describe('requests are validated where the capsule runs', () => {
    let fetch: SafeFetch
    let checker: Capsule
    const events: AuditEvent[] = []
    beforeAll(async () => {
      fetch = fetchFor()
      fetch.audit.on('request', (e) => events.push(e))
      checker = await runtimeFor(isolation, {}, fetch).load({ wasm: capsulePath('probe'), id: `checker-${isolation}` })
    })
    const url = (path: string) => `http://api.test:${server.port}${path}`
    const reply = async (request: string) => (await checker.call('request', request)).json<{ error?: { code: string; message: string }; status?: number }>()

    const deep = `{"url":"${'x'}","extra":${'['.repeat(200_000)}${']'.repeat(200_000)}}`
    const headers = (n: number) => JSON.stringify({ url: url('/h'), headers: Array.from({ length: n }, (_, i) => [`h${i}`, 'v']) })
    test.each<[string, () => string, string | RegExp]>([
      ['200,000 levels of nesting', () => deep, /^invalid request: ✖ Unrecognized key: "extra"/],
      ['257 headers', () => headers(257), /at most 256 headers/],
      ['256 headers, as an object, over 32 Ki characters', () => JSON.stringify({ url: url('/h'), headers: Object.fromEntries(Array.from({ length: 256 }, (_, i) => [`h${i}`, 'v'.repeat(150)])) }), /headers may hold at most 32768 characters of names and values in all/],
      ['a URL of 16,385 characters', () => JSON.stringify({ url: `http://api.test/${'a'.repeat(16_385 - 16)}` }), 'invalid request: ✖ at most 16384 characters; → at url'],
      ['a method of 33 characters', () => JSON.stringify({ url: url('/m'), method: 'M'.repeat(33) }), 'invalid request: ✖ at most 32 characters; → at method'],
      ['an integrity of 1025 characters', () => JSON.stringify({ url: url('/i'), options: { integrity: `sha256-${'A'.repeat(1018)}` } }), 'invalid request: ✖ at most 1024 characters; → at options.integrity'],
      ['a head over 256 KiB (a URL and header values of control characters, six bytes each in JSON)', () => JSON.stringify({ url: `http://a/${'\u0001'.repeat(16_000)}`, headers: Array.from({ length: 8 }, (_, i) => [`h${i}`, '\u0001'.repeat(4000)]) }),
        // The cap is on the frame a worker sends; inline, the whole request is checked on the host thread.
        isolation === 'worker' ? /^the request's URL, headers and options take \d+ bytes; the limit is 262144$/ : 'invalid url: control characters or spaces are not allowed'],
      ['60,000 unknown keys', () => JSON.stringify({ url: url('/k'), ...Object.fromEntries(Array.from({ length: 60_000 }, (_, i) => [`k${i}`, 1])) }), /^invalid request: ✖ Unrecognized keys: .*… \(\d+ more characters\)$/],
      ['a key with escapes', () => JSON.stringify({ url: url('/k'), '\u001b[31m\n': 1 }), 'invalid request: ✖ Unrecognized key: "\\u001b[31m\\n"'],
      ['over maxRequestBytes', () => JSON.stringify({ url: url('/big'), body: 'b'.repeat(MiB) }), /^the request is 10486\d\d bytes; the limit is 1048576$/],
      ['not JSON', () => '{', 'the request is not valid JSON'],
    ])('%s: invalid_request in the reply and an audit event', async (_name, make, message) => {
      const before = events.length
      const { error } = await reply(make())
      expect(error?.code).toBe('invalid_request')
      if (typeof message === 'string') expect(error?.message).toBe(message)
      else expect(error?.message).toMatch(message)
      expect(error!.message.length).toBeLessThan(1100)
      expect(events.slice(before)).toEqual([expect.objectContaining({ kind: 'request', allowed: false, code: 'invalid_request', decidedBy: 'validation', reason: 'invalid request', detail: error!.message })])
    })

    test('a URL of 16,384 characters and 32 Ki characters of headers are accepted', async () => {
      const base = url('/')
      const long = JSON.stringify({ url: `${base}${'a'.repeat(16_384 - base.length)}`, headers: [['x-big', 'v'.repeat(32_768 - 5)]] })
      // Sent: Node's own server then answers 431 (its headers limit is 16 KiB), so ours is not the tighter one.
      const answer = await reply(long)
      expect(answer.error).toBeUndefined()
      expect(answer.status).toBe(431)
    })

    test('256 headers are accepted', async () => {
      expect((await reply(headers(256))).status).toBe(200)
    })

    test('an invalid stream start is a refused stream event', async () => {
      const before = events.length
      const out = (await checker.call('stream', '{"url":1}')).json<{ error: { code: string; message: string } }>()
      expect(out.error.code).toBe('invalid_request')
      expect(events.slice(before)).toEqual([
        expect.objectContaining({ kind: 'stream', allowed: false, code: 'invalid_request', decidedBy: 'validation', reason: 'invalid request', detail: out.error.message }),
      ])
    })

    test.each([
      ['a text body with escapes and non-ASCII', { body: 'é\u0000€\\"x"' }, Buffer.from('é\u0000€\\"x"')],
      ['a base64 body', { bodyBase64: Buffer.from([0, 255, 1, 254]).toString('base64') }, Buffer.from([0, 255, 1, 254])],
      ['no body', {}, Buffer.alloc(0)],
    ])('%s reaches the upstream byte for byte', async (name, body, bytes) => {
      const path = `/body/${encodeURIComponent(name)}`
      expect((await reply(JSON.stringify({ url: url(path), method: 'POST', ...body }))).status).toBe(200)
      expect(received.get(path)).toEqual(bytes)
    })

    test("middleware sees the capsule's body in ctx.req.raw", async () => {
      const seen: unknown[] = []
      const withMiddleware = testFetch({
        rules: [{ host: 'api.test', httpsOnly: false, port: server.port }],
        middleware: async (ctx, next) => {
          seen.push(ctx.req.raw.body, ctx.req.raw.bodyBase64, new TextDecoder().decode(ctx.req.body))
          return next()
        },
      })
      const capsule = await runtimeFor(isolation, {}, withMiddleware).load({ wasm: capsulePath('probe') })
      await capsule.call('request', JSON.stringify({ url: url('/mw'), method: 'POST', body: 'héllo' }))
      expect(seen).toEqual(['héllo', undefined, 'héllo'])
    })
  })
})

describeIsolations('isolation %s: a capsule that misbehaved ends alone', (isolation) => {
  test('after every misbehaviour above, another capsule still makes requests and the hostile module loads again', async () => {
    const runtime = runtimeFor(isolation, { memoryBytes: MiB })
    const hostile = await runtime.load({ wasm: capsulePath('hostile') })
    const probe = await runtime.load({ wasm: capsulePath('probe') })
    await expect(hostile.call('var_flood', `2000:${'v'.repeat(1024)}`)).rejects.toMatchObject({ code: 'memory_limit' })
    await expect(hostile.call('long_key', '1:k')).rejects.toMatchObject({ code: 'unloaded' })
    const reply = (await probe.call('request', JSON.stringify({ url: `http://api.test:${server.port}/alone` }))).json<{ status: number }>()
    expect(reply.status).toBe(200)
    const again = await runtime.load({ wasm: capsulePath('hostile'), config: { k: 'v' } })
    expect((await again.call('long_key', '1:k')).text()).toBe('present')
  })
})

describe('time limits of the runtime fit a Node timer', () => {
  const fetch = () => testFetch({ rules: [{ host: 'api.test' }] })
  test.each<[string, unknown, boolean]>([
    ['MAX_TIMER_MS', MAX_TIMER_MS, true],
    ['MAX_TIMER_MS + 1', MAX_TIMER_MS + 1, false],
    ['2 ** 31', 2 ** 31, false],
    ['Infinity (a call always has a limit)', Number.POSITIVE_INFINITY, false],
    ['0', 0, false],
    ['-1', -1, false],
    ['1.5', 1.5, false],
    ['NaN', Number.NaN, false],
    ['a string', '100', false],
  ])('callTimeoutMs %s', (_name, value, ok) => {
    const make = () => createRuntime({ fetch: fetch(), limits: { callTimeoutMs: value as number } })
    if (ok) return void runtimes.push(make())
    expect(make).toThrow(TypeError)
    expect(make).toThrow(/^invalid runtime limits: ✖ .*; → at callTimeoutMs$/)
  })

  test('a load asking for a limit past the timer maximum is load_failed naming the field', async () => {
    const runtime = createRuntime({ fetch: fetch() })
    runtimes.push(runtime)
    await expect(runtime.load({ wasm: capsulePath('probe'), limits: { callTimeoutMs: 2 ** 31 } })).rejects.toMatchObject({
      code: 'load_failed',
      message: `invalid capsule limits: ✖ must be at most ${MAX_TIMER_MS} ms (what a Node timer can hold); → at callTimeoutMs`,
    })
  })

  test('the bug this prevents: a call under a limit of MAX_TIMER_MS runs normally', async () => {
    const runtime = createRuntime({ fetch: fetch(), limits: { callTimeoutMs: MAX_TIMER_MS } })
    runtimes.push(runtime)
    const capsule = await runtime.load({ wasm: capsulePath('probe') })
    expect((await capsule.call('echo', 'fine')).text()).toBe('fine')
  })

  test.each([0, -5, 1.5, '1'])('maxOutputBytes %s is refused', (value) => {
    expect(() => createRuntime({ fetch: fetch(), limits: { maxOutputBytes: value as number } })).toThrow(/→ at maxOutputBytes$/)
  })
})
