// Stream errors as values: http_stream_next and the SDK's Stream.next() against real failing upstreams, in every isolation; the trapping reads still trap.
import { readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { z } from 'zod'
import { createRuntime, type AuditEvent, type Capsule, type Runtime } from '../src/index.js'
import { createTestHost } from '../src/testing/index.js'
import { STREAM_NEXT_TAG } from '../src/wire/schemas.js'
import { streamArgumentError } from '../src/runtime/host-functions.js'
import { capsulePath, describeIsolations, fnv1a32, type Isolation } from './helpers/capsules.js'
import { closeAllFetches, testFetch } from './helpers/fetch.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'

/** A deterministic body of `size` bytes. */
function pattern(size: number): Buffer {
  const body = Buffer.alloc(size)
  for (let i = 0; i < size; i++) body[i] = (i * 7 + (i >> 9)) & 0xff
  return body
}

const GOOD = pattern(200_000)
/** Larger than the cap the capsule asks for, sent without a content-length (so only the running count finds it). */
const OVER_CAP = pattern(64 * 1024)
const CAP = 1000

function upstream(req: IncomingMessage, res: ServerResponse): void {
  switch (req.url) {
    case '/good':
      return void res.end(GOOD)
    case '/reset':
      // Chunked, so the body is unfinished when the socket goes: destroyed once "part" is on the wire.
      res.writeHead(200)
      return void res.write('part', () => res.socket?.destroy())
    case '/stall':
      res.writeHead(200)
      return void res.write('first')
    case '/over-cap':
      res.writeHead(200)
      return void res.end(OVER_CAP)
    case '/small':
      return void res.end('hello')
    default:
      res.statusCode = 404
      res.end('missing')
  }
}

let server: TestServer
beforeAll(async () => {
  server = await startServer(upstream)
})

const runtimes: Runtime[] = []
/** Every audit event of every runtime here. */
const events: AuditEvent[] = []
afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.close()))
  await closeAllFetches()
  await closeAllServers()
})

function runtimeFor(isolation: Isolation): Runtime {
  const fetch = testFetch({ rules: { host: 'api.test', httpsOnly: false, port: server.port } })
  fetch.audit.on('request', (event) => events.push(event))
  const runtime = createRuntime({ fetch, isolation })
  runtimes.push(runtime)
  return runtime
}

const url = (path: string) => `http://api.test:${server.port}${path}`

/** The ErrorReply of the committed protocol.schema.json, as a validator. */
const errorReplyValid = (() => {
  const doc = JSON.parse(readFileSync(new URL('../protocol.schema.json', import.meta.url), 'utf8')) as Record<string, unknown>
  const schema = z.fromJSONSchema({ ...doc, $ref: '#/$defs/ErrorReply' } as Parameters<typeof z.fromJSONSchema>[0])
  return (value: unknown) => schema.safeParse(value).success
})()

/** One http_stream_next reply, decoded: its tag, and the bytes or the error reply after it. */
type NextReply = { tag: 'data'; bytes: Buffer } | { tag: 'end' } | { tag: 'error'; error: { code: string; message: string; phase?: string } }

function decodeNext(reply: Uint8Array): NextReply {
  const rest = Buffer.from(reply.subarray(1))
  switch (reply[0]) {
    case STREAM_NEXT_TAG.data:
      return { tag: 'data', bytes: rest }
    case STREAM_NEXT_TAG.end:
      expect(rest.byteLength, 'the end tag stands alone').toBe(0)
      return { tag: 'end' }
    case STREAM_NEXT_TAG.error: {
      const parsed = JSON.parse(rest.toString('utf8')) as unknown
      expect(errorReplyValid(parsed), `the error reply validates as ErrorReply: ${rest.toString('utf8')}`).toBe(true)
      return { tag: 'error', error: (parsed as { error: { code: string; message: string } }).error }
    }
    default:
      throw new Error(`unknown http_stream_next tag ${reply[0]}`)
  }
}

/** The failing streams: what breaks, the request, and the exact code (and phase) the capsule gets. */
const FAILURES: ReadonlyArray<readonly [string, () => { url: string }, string, string | undefined]> = [
  ['a reset mid-body', () => ({ url: url('/reset') }), 'network', undefined],
  ['a stall past the idle timeout', () => ({ url: url('/stall'), options: { idleTimeoutMs: 100 } }), 'timeout', 'idle'],
  ['a body past the stream byte cap', () => ({ url: url('/over-cap'), options: { maxResponseBytes: CAP } }), 'too_large', undefined],
]

describeIsolations('isolation %s', (isolation) => {
  let probe: Capsule
  beforeAll(async () => {
    probe = await runtimeFor(isolation).load({ wasm: capsulePath('probe'), id: `stream-errors-${isolation}` })
  })

  const next = async (capsule: Capsule, handle: number | bigint, capacity: number | bigint) =>
    decodeNext((await capsule.call('next_raw', `{"handle":${handle},"capacity":${capacity}}`)).bytes())
  const open = async (capsule: Capsule, request: object) => {
    const [start] = (await capsule.call('hold_streams', { request, count: 1 })).json<Array<{ handle: string }>>()
    return Number(start!.handle)
  }

  describe.each(FAILURES)('%s', (_name, request, code, phase) => {
    test(`Stream.next() gets ${code} as a value, reports it, and the retry on a second route succeeds`, async () => {
      type Attempt = { status: number; bytes: number; fnv1a32: string; end?: true; error?: { code: string; phase?: string }; again?: string }
      const { attempts } = (await probe.call('stream_attempts', [request(), { url: url('/good') }])).json<{ attempts: Attempt[] }>()
      expect(attempts).toHaveLength(2)
      const [failed, retried] = attempts
      expect(failed).toMatchObject({ status: 200, error: { code }, again: code })
      expect(failed!.error!.phase).toBe(phase)
      expect(failed).not.toHaveProperty('end')
      if (code === 'too_large') expect(failed!.bytes).toBeLessThanOrEqual(CAP)
      expect(retried).toEqual({ status: 200, bytes: GOOD.length, fnv1a32: fnv1a32(GOOD), end: true })
      // Audited as a trapping read is: the failed stream with its code, the retry with its bytes.
      const mine = events.filter((e) => e.capsuleId === `stream-errors-${isolation}` && e.kind === 'stream')
      const [failedEvent, retriedEvent] = mine.slice(-2)
      expect(failedEvent).toMatchObject({ url: request().url, allowed: true, code })
      expect(failedEvent!.phase).toBe(phase)
      expect(retriedEvent).toMatchObject({ url: url('/good'), allowed: true, status: 200, bytesIn: GOOD.length })
      expect(retriedEvent).not.toHaveProperty('code')
    })

    test.each([
      ['stream', 'http_stream_read_into'],
      ['stream_plain', 'http_stream_read'],
    ])(`the trapping read (probe.%s: %s) still fails the call with hostCode ${code}`, async (name) => {
      await expect(probe.call(name, request())).rejects.toMatchObject({ code: 'capsule_failed', hostCode: code })
    })

    test('http_stream_next: data, then the error reply; the handle is freed (a further read is invalid_request, every slot opens again)', async () => {
      const capsule = await runtimeFor(isolation).load({ wasm: capsulePath('probe') })
      const handle = await open(capsule, request())
      const replies: NextReply[] = []
      for (let reply = await next(capsule, handle, 64 * 1024); ; reply = await next(capsule, handle, 64 * 1024)) {
        replies.push(reply)
        if (reply.tag !== 'data') break
      }
      const last = replies.at(-1)!
      expect(last).toMatchObject({ tag: 'error', error: { code } })
      if (last.tag === 'error') expect(last.error.phase).toBe(phase)
      expect(await next(capsule, handle, 16)).toMatchObject({ tag: 'error', error: { code: 'invalid_request', message: `"${handle}" is not an open stream handle of this capsule` } })
      const starts = (await capsule.call('hold_streams', { request: { url: url('/stall') }, count: 4 })).json<Array<{ handle?: string }>>()
      expect(starts.map((s) => typeof s.handle)).toEqual(['string', 'string', 'string', 'string'])
      await capsule.unload()
    })
  })

  test('a stream that does not open is reported as the start reply, and the next request is tried', async () => {
    const { attempts } = (await probe.call('stream_attempts', [{ url: 'http://elsewhere.test/' }, { url: url('/small') }])).json<{ attempts: object[] }>()
    expect(attempts).toEqual([{ start: { error: { code: 'denied', message: expect.any(String) } } }, { status: 200, bytes: 5, fnv1a32: fnv1a32(Buffer.from('hello')), end: true }])
  })

  describe('http_stream_next boundaries', () => {
    let capsule: Capsule
    beforeAll(async () => {
      capsule = await runtimeFor(isolation).load({ wasm: capsulePath('probe') })
    })
    afterAll(async () => capsule.unload())

    test('read after the end: the end once, then invalid_request (the handle was freed at the end)', async () => {
      const handle = await open(capsule, { url: url('/small') })
      expect(await next(capsule, handle, 1024)).toEqual({ tag: 'data', bytes: Buffer.from('hello') })
      expect(await next(capsule, handle, 1024)).toEqual({ tag: 'end' })
      expect(await next(capsule, handle, 1024)).toMatchObject({ tag: 'error', error: { code: 'invalid_request', message: `"${handle}" is not an open stream handle of this capsule` } })
    })

    test('read after an error: the error once, then invalid_request', async () => {
      const handle = await open(capsule, { url: url('/stall'), options: { idleTimeoutMs: 100 } })
      expect(await next(capsule, handle, 1024)).toEqual({ tag: 'data', bytes: Buffer.from('first') })
      expect(await next(capsule, handle, 1024)).toMatchObject({ tag: 'error', error: { code: 'timeout', phase: 'idle' } })
      expect(await next(capsule, handle, 1024)).toMatchObject({ tag: 'error', error: { code: 'invalid_request' } })
    })

    test('a closed handle is invalid_request', async () => {
      const handle = await open(capsule, { url: url('/stall') })
      expect((await capsule.call('close_handle', String(handle))).text()).toBe('closed')
      expect(await next(capsule, handle, 1024)).toMatchObject({ tag: 'error', error: { code: 'invalid_request', message: `"${handle}" is not an open stream handle of this capsule` } })
    })

    test.each<[string, bigint, RegExp]>([
      ['0', 0n, /^0 is not a stream handle$/],
      ['negative', -1n, /^-1 is not a stream handle$/],
      ['i64 minimum', -(2n ** 63n), /^-9223372036854775808 is not a stream handle$/],
      ['never opened', 9999n, /^"9999" is not an open stream handle of this capsule$/],
      // The longest handle a session hands out, and past it: the same answer in every isolation.
      ['16 digits', 10n ** 16n - 1n, /^"9999999999999999" is not an open stream handle of this capsule$/],
      ['17 digits', 10n ** 16n, /^"10000000000000000" is not an open stream handle of this capsule$/],
      ['huge', 2n ** 62n, /^"4611686018427387904" is not an open stream handle of this capsule$/],
      ['i64 maximum', 2n ** 63n - 1n, /^"9223372036854775807" is not an open stream handle of this capsule$/],
    ])('bad handle (%s) is invalid_request', async (_name, handle, message) => {
      const reply = await next(capsule, handle, 1024)
      expect(reply).toMatchObject({ tag: 'error', error: { code: 'invalid_request' } })
      if (reply.tag === 'error') expect(reply.error.message).toMatch(message)
    })

    test.each<[string, bigint]>([
      ['0', 0n],
      ['negative', -1n],
      ['i64 minimum', -(2n ** 63n)],
    ])('capacity %s is invalid_request, and the stream is left as it was', async (_name, capacity) => {
      const handle = await open(capsule, { url: url('/small') })
      expect(await next(capsule, handle, capacity)).toMatchObject({ tag: 'error', error: { code: 'invalid_request', message: 'the read capacity must be at least 1 byte' } })
      expect(await next(capsule, handle, 1024)).toEqual({ tag: 'data', bytes: Buffer.from('hello') })
      expect(await next(capsule, handle, 1024)).toEqual({ tag: 'end' })
    })

    test('the probe refuses a handle or capacity that is not an i64 integer (it would not pass it on exactly)', async () => {
      await expect(capsule.call('next_raw', `{"handle":1,"capacity":${2n ** 63n}}`)).rejects.toMatchObject({ code: 'capsule_failed' })
    })

    test('capacity 1 takes one byte a read; a huge capacity (2^62) takes what has arrived', async () => {
      const handle = await open(capsule, { url: url('/small') })
      expect(await next(capsule, handle, 1)).toEqual({ tag: 'data', bytes: Buffer.from('h') })
      expect(await next(capsule, handle, 2n ** 62n)).toEqual({ tag: 'data', bytes: Buffer.from('ello') })
      expect(await next(capsule, handle, 2n ** 62n)).toEqual({ tag: 'end' })
    })
  })
})

describeIsolations('through the test kit (%s): three failed downloads in a row, then one that ends', (isolation) => {
  test('each failure is a value with its exact code, the fourth URL is read to its end, and the audit agrees', async () => {
    await using host = await createTestHost({
      isolation,
      mocks: {
        upstreams: {
          'files.test': {
            routes: [
              { path: '/reset', chunks: [{ data: 'part' }], reset: 'mid-body' },
              // The second chunk comes long after the capsule's idle timeout (the host's close ends the wait).
              { path: '/stall', chunks: [{ data: 'first' }, { data: 'late', delayMs: 60_000 }] },
              { path: '/over-cap', chunks: [{ data: 'x'.repeat(64 * 1024) }] },
              { path: '/good', body: 'the whole file' },
            ],
          },
        },
      },
    })
    const at = (path: string) => host.url('files.test', path)
    const requests = [
      { url: at('/reset') },
      { url: at('/stall'), options: { idleTimeoutMs: 100 } },
      { url: at('/over-cap'), options: { maxResponseBytes: CAP } },
      { url: at('/good') },
    ]
    const result = await host.run(capsulePath('probe'), 'stream_attempts', requests)
    expect(result.status).toBe('ok')
    const { attempts } = JSON.parse(result.output) as { attempts: Array<{ error?: { code: string; phase?: string }; end?: true; bytes: number }> }
    expect(attempts.map((a) => a.error?.code ?? (a.end ? 'end' : '?'))).toEqual(['network', 'timeout', 'too_large', 'end'])
    expect(attempts[1]!.error!.phase).toBe('idle')
    expect(attempts[3]!.bytes).toBe('the whole file'.length)
    expect(result.audit.map((e) => [e.url, e.code ?? e.status])).toEqual([
      [at('/reset'), 'network'],
      [at('/stall'), 'timeout'],
      [at('/over-cap'), 'too_large'],
      [at('/good'), 200],
    ])
    expect(host.upstream('files.test').received.map((r) => r.path)).toEqual(['/reset', '/stall', '/over-cap', '/good'])
  })
})

describe('streamArgumentError: the arguments of http_stream_next and http_stream_read_into as they arrive', () => {
  // Wasm checks no import's signature against ours: a capsule may declare these functions with f64
  // or missing parameters, so a handle or capacity can arrive as a number, NaN or undefined.
  const capacityError = { code: 'invalid_request', message: 'the read capacity must be at least 1 byte' }
  test.each<[string, unknown, unknown, object | undefined]>([
    ['the smallest handle and capacity', 1n, 1n, undefined],
    ['the largest handle and capacity', 10n ** 16n - 1n, 2n ** 63n - 1n, undefined],
    ['integers as numbers (an f64 declaration)', 3, 1024, undefined],
    ['handle 0', 0n, 1n, { code: 'invalid_request', message: '0 is not a stream handle' }],
    ['handle -1', -1n, 1n, { code: 'invalid_request', message: '-1 is not a stream handle' }],
    ['handle past the largest', 10n ** 16n, 1n, { code: 'invalid_request', message: '"10000000000000000" is not an open stream handle of this capsule' }],
    ['handle NaN', Number.NaN, 1n, { code: 'invalid_request', message: 'NaN is not a stream handle' }],
    ['handle 1.5', 1.5, 1n, { code: 'invalid_request', message: '1.5 is not a stream handle' }],
    ['handle 2^53 as a number (not exact)', 2 ** 53, 1n, { code: 'invalid_request', message: '9007199254740992 is not a stream handle' }],
    ['no handle', undefined, 1n, { code: 'invalid_request', message: 'undefined is not a stream handle' }],
    ['capacity 0', 1n, 0n, capacityError],
    ['capacity -1', 1n, -1n, capacityError],
    ['capacity NaN', 1n, Number.NaN, capacityError],
    ['capacity 0.5', 1n, 0.5, capacityError],
    ['no capacity', 1n, undefined, capacityError],
  ])('%s', (_name, handle, capacity, error) => {
    expect(streamArgumentError(handle, capacity)).toEqual(error)
  })
})
